// A push flood against the mock APNs and FCM of a ready file, short and bounded, with
// thresholds CI can gate on (docs/k6.md):
//
//   bin/salvo mockpush --ready-file /tmp/r.json --fcm-quota 100000000 &
//   SALVO_READY_FILE=/tmp/r.json bin/k6 run loadgen/k6/push.js
//
// Exit 0 when every threshold holds, 99 (k6's code) when one fails.
// Environment: SALVO_READY_FILE (required), SALVO_P99_MS (latency threshold, default 5000),
// SALVO_DURATION (default 10s), SALVO_VUS (VUs per platform, default 8), SALVO_BATCH
// (tokens per call, default 100), SALVO_CONNECTIONS (per provider, default 4),
// SALVO_PLATFORMS (default "apns,fcm").
import { Push } from 'k6/x/salvo';

const duration = __ENV.SALVO_DURATION || '10s';
const vus = Number(__ENV.SALVO_VUS || 8);
const batch = Number(__ENV.SALVO_BATCH || 100);

// One scenario per platform, each with its own VUs.
const scenarios = {};
for (const p of (__ENV.SALVO_PLATFORMS || 'apns,fcm').split(',')) {
  if (p !== 'apns' && p !== 'fcm') {
    throw new Error(`SALVO_PLATFORMS: unknown platform ${p} (want apns, fcm)`);
  }
  scenarios[p] = { executor: 'constant-vus', exec: p, vus, duration, gracefulStop: '10s' };
}

export const options = {
  scenarios,
  thresholds: {
    salvo_push_latency: [`p(99) < ${__ENV.SALVO_P99_MS || 5000}`],
    salvo_push_accepted: ['count > 0'],
    salvo_push_rejected: ['count == 0'],
    salvo_push_failed: ['count == 0'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

// One client per VU; every VU's client shares the process's connections (docs/k6.md).
const push = new Push({
  readyFile: __ENV.SALVO_READY_FILE,
  connections: Number(__ENV.SALVO_CONNECTIONS || 4),
});

// Each call pushes a silent notification to `batch` tokens generated for it.
export function apns() {
  push.apns(batch);
}

export function fcm() {
  push.fcm(batch);
}

export function teardown() {
  push.close();
}
