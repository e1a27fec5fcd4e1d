#!/usr/bin/env bash
# salvo gameday against the mock, configured only through the config file (run from the
# repository root after make build): 10,000 iOS + 10,000 Android tokens, all on the
# allowlist, rate cap 3,000 pushes/s per provider. Writes the report to $WORK/out and the
# mock's /stats to $WORK/mockstats.json.
set -euo pipefail
BIN=${SALVO_BIN:-$(pwd)/bin/salvo}
W=${WORK:-/tmp/salvo-gameday-mock}; mkdir -p "$W"; cd "$W"
rm -rf mock out ready.json
$BIN mockpush --ready-file ready.json --dir mock > mock.log 2>&1 &
MP=$!
trap 'kill $MP 2>/dev/null' EXIT
for i in $(seq 50); do [ -s ready.json ] && break; sleep 0.2; done
python3 - <<'PY'
import json, random
rd=json.load(open('ready.json'))
random.seed(7)
with open('tokens.csv','w') as f:
    for i in range(10000):
        f.write('ios,%064x\n' % random.getrandbits(256))
    for i in range(10000):
        f.write('android,%s\n' % ''.join(random.choice('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-') for _ in range(152)))
cfg={"name":"hand-1",
 "apns":{"url":rd["apns_url"],"key_file":rd["apns_key_file"],"key_id":rd["apns_key_id"],"team_id":rd["apns_team_id"],"topic":rd["apns_topic"],"ca_file":rd["ca_file"]},
 "fcm":{"project_id":rd["fcm_project_id"],"service_account_file":rd["fcm_service_account_file"],"url":rd["fcm_url"],"ca_file":rd["ca_file"]},
 "tokens_file":"tokens.csv","allowlist_file":"tokens.csv","max_recipients":20000,"rate_per_second":3000,"dry_run":False,
 "apns_payload":{"aps":{"content-available":1}},"fcm_data":{"rehearsal":"hand-1"}}
json.dump(cfg,open('config.json','w'))
PY
set +e
/usr/bin/time -v $BIN gameday --config config.json --out out --yes > gameday.out 2> gameday.err
echo "exit $?"
curl -s $(python3 -c "import json;print(json.load(open('ready.json'))['control_url'])")/stats > mockstats.json
