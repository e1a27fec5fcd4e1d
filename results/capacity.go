package results

import "math"

// Capacity sizes a send fleet and the provider side for the run's audience within the
// target, from what the run measured (report.json "capacity", an addition to the
// contract's fields). docs/capacity.md describes the model, its assumptions and how it
// compares with the cloud-scale arms.
type Capacity struct {
	// Recipients is the audience to send (recipients less the control group) and
	// TargetSeconds the time the whole of it must go out in.
	Recipients    int64   `json:"recipients"`
	TargetSeconds float64 `json:"target_seconds"`
	// SenderCPUUsPerNotification is the run's measured sender CPU per notification, and
	// SendCores the CPU cores a send fleet needs to push Recipients within TargetSeconds at
	// that cost: Recipients x SenderCPUUsPerNotification / (TargetSeconds x 1e6). It is a
	// floor: it assumes the cores do nothing else and the work divides evenly.
	SenderCPUUsPerNotification float64      `json:"sender_cpu_us_per_notification"`
	SendCores                  float64      `json:"send_cores"`
	FCM                        FCMCapacity  `json:"fcm"`
	APNs                       APNsCapacity `json:"apns"`
}

// FCMCapacity is the FCM side: one request per message, and a per-project quota counted
// over a sliding minute.
type FCMCapacity struct {
	// Android is the Android recipients; PerSecond the rate that sends them within the
	// target.
	Android   int64   `json:"android"`
	PerSecond float64 `json:"per_second"`
	// QuotaPerMinuteNeeded is the quota that lets every Android recipient out within one
	// minute (a send shorter than a minute needs the whole count inside one window):
	// Android. DefaultQuotaPerMinute is FCM's default (600,000) and QuotaMultiple the
	// needed quota over it.
	QuotaPerMinuteNeeded  int64   `json:"quota_per_minute_needed"`
	DefaultQuotaPerMinute int64   `json:"default_quota_per_minute"`
	QuotaMultiple         float64 `json:"quota_multiple"`
}

// APNsCapacity is the APNs side: HTTP/2 connections, each with a bounded number of
// concurrent streams, each stream one request for one round trip.
type APNsCapacity struct {
	// IOS is the iOS recipients; PerSecond the rate that sends them within the target.
	IOS       int64   `json:"ios"`
	PerSecond float64 `json:"per_second"`
	// StreamsPerConnection and RoundTripMs are assumptions (APNs advertises 500-1,500
	// concurrent streams; the round trip is the network's and APNs' own time per request).
	StreamsPerConnection int     `json:"streams_per_connection"`
	RoundTripMs          float64 `json:"round_trip_ms"`
	// Connections is how many connections carry PerSecond (Little's law): PerSecond x
	// RoundTripMs / 1000 requests in flight, StreamsPerConnection per connection.
	Connections int64 `json:"connections"`
}

// CapacityModel holds the assumptions of the capacity line that a run does not measure.
// The zero value takes DefaultCapacityModel's fields.
type CapacityModel struct {
	// FCMQuotaPerMinute is FCM's per-project quota (default 600,000).
	FCMQuotaPerMinute int64
	// APNsStreamsPerConnection is the concurrent streams APNs allows a connection (default
	// 1,000, within the 500-1,500 it advertises).
	APNsStreamsPerConnection int
	// APNsRoundTripMs is the time from a request's last byte to its answer (default 100).
	APNsRoundTripMs float64
}

// DefaultCapacityModel is the capacity line's assumptions when a run gives none.
func DefaultCapacityModel() CapacityModel {
	return CapacityModel{FCMQuotaPerMinute: 600000, APNsStreamsPerConnection: 1000, APNsRoundTripMs: 100}
}

// capacityOf computes the capacity line; nil when the run measured no sender CPU or has
// nobody to send to.
func capacityOf(a Audience, res Resources, target Target, m CapacityModel) *Capacity {
	def := DefaultCapacityModel()
	if m.FCMQuotaPerMinute <= 0 {
		m.FCMQuotaPerMinute = def.FCMQuotaPerMinute
	}
	if m.APNsStreamsPerConnection <= 0 {
		m.APNsStreamsPerConnection = def.APNsStreamsPerConnection
	}
	if m.APNsRoundTripMs <= 0 {
		m.APNsRoundTripMs = def.APNsRoundTripMs
	}
	send := a.Recipients - a.Control
	cpu := res.SenderCPUUsPerNotification
	if send <= 0 || cpu <= 0 || target.Seconds <= 0 {
		return nil
	}
	// The control group's devices are in audience.ios and .android; they are taken off in
	// the audience's own proportion.
	share := float64(send) / float64(a.Recipients)
	ios, android := int64(math.Round(float64(a.IOS)*share)), int64(math.Round(float64(a.Android)*share))
	t := target.Seconds
	c := &Capacity{Recipients: send, TargetSeconds: t, SenderCPUUsPerNotification: cpu,
		SendCores: round(float64(send)*cpu/(t*1e6), 3)}
	c.FCM = FCMCapacity{Android: android, PerSecond: round(float64(android)/t, 1), QuotaPerMinuteNeeded: android,
		DefaultQuotaPerMinute: m.FCMQuotaPerMinute, QuotaMultiple: round(float64(android)/float64(m.FCMQuotaPerMinute), 2)}
	iosRate := float64(ios) / t
	c.APNs = APNsCapacity{IOS: ios, PerSecond: round(iosRate, 1), StreamsPerConnection: m.APNsStreamsPerConnection,
		RoundTripMs: m.APNsRoundTripMs,
		Connections: int64(math.Ceil(iosRate * m.APNsRoundTripMs / 1000 / float64(m.APNsStreamsPerConnection)))}
	return c
}
