// The double-press storm through Salvo's campaign API (docs/k6.md): a campaign is created,
// resolved and prepared; then many VUs, spread over the API replicas, press GO at the same
// moment. Thresholds require that exactly one press started the send and every other one
// answered already_pressed; checks require that every press answered the campaign's one
// send, that the workers finished each recipient once, and that the mock servers (their
// control API /stats) received each recipient exactly once.
//
//   make k6-campaign
//
// which runs, with the pipeline started in process mode (two `salvo serve` replicas on the
// AWS emulators, a fan-out and a send worker, the mock servers):
//
//   bin/k6rig --mode campaign -- bin/k6 run loadgen/k6/campaign.js
//
// Environment (set by k6rig): SALVO_API_URLS (comma-separated replicas), SALVO_READY_FILE
// (the mock's ready file), SALVO_AUDIENCE_FILE (a CSV of user IDs), SALVO_WORKERS (send
// workers to prepare); optional SALVO_PRESSES (VUs pressing GO, default 20) and SALVO_TOKEN
// (the API's bearer token, when it requires one).
import { Campaigns } from 'k6/x/salvo';
import http from 'k6/http';
import { check, sleep } from 'k6';

if (!__ENV.SALVO_API_URLS || !__ENV.SALVO_READY_FILE || !__ENV.SALVO_AUDIENCE_FILE) {
  throw new Error('set SALVO_API_URLS, SALVO_READY_FILE and SALVO_AUDIENCE_FILE, or run through k6rig (make k6-campaign)');
}
const urls = __ENV.SALVO_API_URLS.split(',');
const presses = Number(__ENV.SALVO_PRESSES || 20);
const workers = Number(__ENV.SALVO_WORKERS || 1);
const controlURL = JSON.parse(open(__ENV.SALVO_READY_FILE)).control_url;
const audience = open(__ENV.SALVO_AUDIENCE_FILE);

export const options = {
  scenarios: {
    storm: { executor: 'per-vu-iterations', vus: presses, iterations: 1, maxDuration: '60s' },
  },
  setupTimeout: '180s',
  teardownTimeout: '180s',
  thresholds: {
    'salvo_campaign_presses{result:started}': ['count == 1'],
    'salvo_campaign_presses{result:already_pressed}': [`count == ${presses - 1}`],
    'salvo_campaign_presses{result:error}': ['count == 0'],
    checks: ['rate == 1'],
  },
};

// VU n talks to replica n modulo the number of replicas (setup and teardown to the first).
const api = new Campaigns({ url: urls[__VU % urls.length] });

// mockStats sums the mock servers' counters over APNs and FCM.
function mockStats() {
  const s = http.get(`${controlURL}/stats`).json();
  const sum = (k) => s.apns[k] + s.fcm[k];
  return { received: sum('received'), unique: sum('unique'), duplicates: sum('duplicates') };
}

export function setup() {
  api.upload('audiences/k6-storm.csv', audience);
  const c = api.create({
    name: 'k6 double press',
    audience: { object: 'audiences/k6-storm.csv' },
    silent: true,
    message: { apns: { payload: { aps: { 'content-available': 1 } } }, fcm: { data: { spot: 'on-air' } } },
  });
  api.waitResolved(c.id, { timeout: '120s' });
  api.prepare(c.id, workers);
  const st = api.waitReady(c.id, { timeout: '120s' });
  return {
    id: c.id,
    recipients: st.campaign.resolution.recipients,
    finishedBefore: api.finished(),
    mockBefore: mockStats(),
    // Every VU presses at this moment.
    pressAt: Date.now() + 1000,
  };
}

export default function (data) {
  const wait = data.pressAt - Date.now();
  if (wait > 0) {
    sleep(wait / 1000);
  }
  const res = api.press(data.id);
  const st = api.status(data.id);
  check(res, { "the press answers the campaign's one send": (r) => r.send_id === st.campaign.send.id });
}

export function teardown(data) {
  api.waitDone(data.id, { since: data.finishedBefore, timeout: '120s' });
  // One heartbeat period more (2 s), so that a second send would show in the counts.
  sleep(3);
  const finished = api.finished() - data.finishedBefore;
  const after = mockStats();
  const mock = {
    received: after.received - data.mockBefore.received,
    unique: after.unique - data.mockBefore.unique,
    duplicates: after.duplicates - data.mockBefore.duplicates,
  };
  console.log(`campaign ${data.id}: ${data.recipients} recipients; workers finished ${finished}; ` +
    `mock received ${mock.received}, unique ${mock.unique}, duplicates ${mock.duplicates}`);
  check(mock, {
    'the workers finished each recipient once': () => finished === data.recipients,
    'the mock received each recipient once': (m) =>
      m.received === data.recipients && m.unique === data.recipients && m.duplicates === 0,
  });
}
