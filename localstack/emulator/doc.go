// Package emulator runs the AWS emulators Salvo's integration tests use: fauxqs (SQS over
// the AWS JSON protocol, and S3) and dynalite (DynamoDB), installed from npm into the tools
// folder by localstack/install-emulators.sh (`make emulators`). They run in one Node 22
// process on free 127.0.0.1 ports.
//
// A test package shares one pair of emulators across its tests:
//
//	func TestMain(m *testing.M) { os.Exit(emulator.Run(m)) }
//
//	func TestQueue(t *testing.T) {
//		ep := emulator.Start(t) // skips when the tools are missing (fails when CI=true)
//		clients := ep.Clients(t)
//		...
//	}
//
// Tests share the emulators' state, so each test names its queues, buckets and tables
// uniquely (e.g. after t.Name()). Child processes reach the same emulators through
// Endpoints.Env.
package emulator
