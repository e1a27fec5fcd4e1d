#!/usr/bin/env bash
# Full disk during a send (needs root for a tmpfs; run from the repository root after
# make build): salvo all keeps --data on a 48 MiB tmpfs that is filled one second after GO.
# Prints the status and warnings while full, then frees the space, restarts salvo all on the
# same data and prints the campaign's result and the mock's counts (accepted, unique,
# duplicates per provider). WORK (default /tmp/salvo-fulldisk) holds the registry and logs.
set -u
B=${SALVO_BIN:-$(pwd)/bin/salvo}
W=${WORK:-/tmp/salvo-fulldisk}; mkdir -p "$W"; cd "$W"
umount "$W/data" 2>/dev/null; rm -rf data mock ready.json all.ready api.token all.log all2.log; mkdir -p data
mount -t tmpfs -o size=48m tmpfs "$W/data" || { echo "no tmpfs"; exit 2; }
[ -d reg ] || $B gen registry --users 20000 --out reg >/dev/null
$B mockpush --ready-file ready.json --dir mock --apns-topic com.salvo.bench --fcm-project salvo-bench > mock.log 2>&1 & MP=$!
for i in $(seq 50); do [ -s ready.json ] && break; sleep 0.2; done
CTL=$(python3 -c "import json;print(json.load(open('ready.json'))['control_url'])")
# The mock answers slowly so the send lasts a few seconds (20 ms per push).
curl -s -X PUT "$CTL/faults" -d '{"apns":{"latency":{"fixed_ms":20}},"fcm":{"latency":{"fixed_ms":20}}}' >/dev/null
start_all() { $B all --registry reg --mock-ready ready.json --data data --addr 127.0.0.1:18181 --ready-file all.ready --token-file api.token --send-loops 4 --chunk 50 > $1 2>&1 & AP=$!; for i in $(seq 100); do [ -s all.ready ] && break; sleep 0.2; done; }
start_all all.log
export SALVO_API=http://127.0.0.1:18181 SALVO_TOKEN=$(cat api.token)
cat > spec.json <<J
{"id":"fd1","name":"full disk","audience":{"object":"audiences/a.csv"},"silent":true,"message":{"apns":{"payload":{"aps":{"content-available":1}}},"fcm":{"data":{"k":"v"}}}}
J
$B campaign create --spec spec.json --audience reg/audience.csv >/dev/null || { echo create failed; tail all.log; }
$B campaign prepare fd1 --workers 1 --wait --timeout 60s >/dev/null
$B campaign go fd1 >/dev/null
sleep 1
dd if=/dev/zero of=data/filler bs=1M count=100 2>/dev/null; df -h data | tail -1
sleep 20
echo "--- status while full"; $B campaign status fd1 | python3 -c "import json,sys;s=json.load(sys.stdin);c=s['campaign'];p=s.get('progress') or {};print(c['state'], 'accepted', p.get('accepted'), 'in_flight', p.get('in_flight'), 'stall', json.dumps(p.get('stall') or s.get('stall')))"
echo "--- warnings"; grep -E "level=(WARN|ERROR)" all.log | cut -c1-220 | sort | uniq -c | sort -rn | head -8
curl -s "$CTL/stats" | python3 -c "import json,sys;s=json.load(sys.stdin);print('mock while full', {p:(s[p]['accepted'],s[p]['unique'],s[p]['duplicates']) for p in ('apns','fcm')})"
rm -f data/filler
kill $AP; wait $AP 2>/dev/null; echo "salvo all exit after SIGTERM: $?"
rm -f all.ready; start_all all2.log; export SALVO_TOKEN=$(cat api.token)
$B campaign wait fd1 --timeout 120s >/dev/null; echo "wait exit $?"
$B campaign status fd1 | python3 -c "import json,sys;s=json.load(sys.stdin);c=s['campaign'];print(c['state'], c.get('result'))"
curl -s "$CTL/stats" | python3 -c "import json,sys;s=json.load(sys.stdin);print('mock at end', {p:(s[p]['accepted'],s[p]['unique'],s[p]['duplicates']) for p in ('apns','fcm')})"
grep -c . reg/audience.csv
kill $AP $MP 2>/dev/null; wait 2>/dev/null
umount "$W/data"
