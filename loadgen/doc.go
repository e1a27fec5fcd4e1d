// Package loadgen generates the synthetic data Salvo's benchmarks run on: device registries
// of any size, deterministic from a seed, and campaign audiences drawn from them.
//
// A registry has users u00000001, u00000002, ... with one device each, or two with
// probability MultiDeviceShare; a device is iOS with probability IOSShare. APNs tokens are 64
// lowercase hex digits (160 with probability LongTokenShare) and FCM tokens look like real
// registration tokens ("<22 chars>:APA91b<more>", 152 to 163 characters). A share
// InvalidShare of tokens start with mockpush.UnregisteredMarker, which the mock providers
// answer as unregistered; no valid token starts with it.
//
//	spec := loadgen.DefaultRegistrySpec()
//	spec.Users = 500_000
//	spec.InvalidShare = 0.01
//	sum, err := loadgen.WriteRegistry(ctx, spec, "data/registry") // registry.bin, audience.csv, registry.json
//	if err != nil {
//		return err
//	}
//	fmt.Println(sum.InvalidTokens.Total(), "tokens will be rejected")
//
//	// Other sinks (a DynamoDB loader, a test) stream the same users without files:
//	err = spec.Each(func(userID string, devices []sender.Device) error { ... })
//
// WriteAudience draws a campaign's audience (CSV, NDJSON or JSON) from a registry, with
// unknown user IDs mixed in on request. "salvo gen registry" and "salvo gen audience" are
// the command-line faces of WriteRegistry and WriteAudienceFile; docs/registry.md has the
// details.
package loadgen
