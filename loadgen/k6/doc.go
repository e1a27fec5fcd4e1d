// Package k6 is Salvo's k6 extension, imported by scripts as k6/x/salvo (docs/k6.md). It
// gives JavaScript a push client for APNs and FCM on the burst transport (sender/burst) and
// a client of the campaign API (sender/api), and records every push answer as k6 metrics:
// salvo_push_latency (Trend, ms), salvo_push_accepted, salvo_push_rejected and
// salvo_push_failed (Counters), so that k6 thresholds gate on them.
//
// It is its own Go module, so that k6's dependencies stay out of Salvo's main module. Build
// a k6 with it by `make k6` (plain go build of cmd/k6) or with xk6:
//
//	xk6 build v1.8.1 --with github.com/salvopush/salvo/loadgen/k6=./loadgen/k6 --replace github.com/salvopush/salvo=.
//
// A script:
//
//	import { Push } from 'k6/x/salvo';
//
//	export const options = { thresholds: { salvo_push_latency: ['p(99) < 5000'] } };
//	const push = new Push({ readyFile: __ENV.SALVO_READY_FILE });
//
//	export default function () {
//		push.apns(100); // a silent push to 100 generated tokens
//	}
//
// All VUs share one transport per endpoint (see transportCache): k6 runs them as goroutines
// of one process, and the burst transport already multiplexes concurrent sends onto a few
// HTTP/2 connections.
package k6
