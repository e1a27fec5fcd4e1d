package results

import (
	"fmt"
	"testing"
)

func TestCapacity(t *testing.T) {
	t.Parallel()
	four := Audience{Recipients: 4_000_000, IOS: 2_000_000, Android: 2_000_000}
	tests := []struct {
		name  string
		a     Audience
		res   Resources
		m     CapacityModel
		cores float64
		quota int64
		conns int64
	}{
		// The mission's case: 4M in 5 s at 1.5 µs is 1.2 cores; 2M Android need 3.33x FCM's
		// default quota; 400,000 iOS/s at 100 ms and 1,000 streams is 40 connections.
		{"4M", four, Resources{SenderCPUUsPerNotification: 1.5}, CapacityModel{}, 1.2, 2_000_000, 40},
		// A control group is taken off both platforms in proportion.
		{"control", Audience{Recipients: 1000, IOS: 500, Android: 500, Control: 100}, Resources{SenderCPUUsPerNotification: 10},
			CapacityModel{}, 0.002, 450, 1},
		// Other assumptions: 500 streams and a 250 ms round trip need 5x the connections.
		{"slow APNs", four, Resources{SenderCPUUsPerNotification: 1.5}, CapacityModel{APNsStreamsPerConnection: 500, APNsRoundTripMs: 250},
			1.2, 2_000_000, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := capacityOf(tt.a, tt.res, Target{Seconds: 5, Percentile: 99}, tt.m)
			if c == nil || c.SendCores != tt.cores || c.FCM.QuotaPerMinuteNeeded != tt.quota || c.APNs.Connections != tt.conns {
				t.Fatalf("capacity = %+v; want %v cores, quota %d, %d connections", c, tt.cores, tt.quota, tt.conns)
			}
		})
	}
	if c := capacityOf(four, Resources{}, Target{Seconds: 5}, CapacityModel{}); c != nil {
		t.Errorf("capacity without a CPU figure = %+v, want none", c)
	}
}

func ExampleBuild_capacity() {
	r := Build(Inputs{Scenario: "burst-4m",
		Audience:  Audience{Recipients: 4_000_000, IOS: 2_000_000, Android: 2_000_000},
		Resources: Resources{SenderCPUSeconds: 6, SenderCPUUsPerNotification: 1.5}})
	c := r.Capacity
	fmt.Printf("%.2f send cores; FCM quota %d/min (%.2fx default); APNs %d connections\n",
		c.SendCores, c.FCM.QuotaPerMinuteNeeded, c.FCM.QuotaMultiple, c.APNs.Connections)
	// Output: 1.20 send cores; FCM quota 2000000/min (3.33x default); APNs 40 connections
}
