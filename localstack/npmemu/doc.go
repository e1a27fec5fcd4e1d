// Package npmemu starts the npm AWS emulators, the stand-ins for LocalStack that need no
// Docker: fauxqs (SQS over the AWS JSON protocol, and S3) and dynalite (DynamoDB), installed
// from npm into the tools folder by localstack/install-emulators.sh (`make emulators`). They
// run in one Node 22 process on free 127.0.0.1 ports. Salvo's integration tests use them,
// and so does the process mode of the scenarios (Launch).
//
// A test package shares one pair of emulators across its tests:
//
//	func TestMain(m *testing.M) { os.Exit(npmemu.Run(m)) }
//
//	func TestQueue(t *testing.T) {
//		ep := npmemu.Start(t) // skips when the tools are missing (fails when CI=true)
//		clients := ep.Clients(t)
//		...
//	}
//
// Tests share the emulators' state, so each test names its queues, buckets and tables
// uniquely (e.g. after t.Name()). Child processes reach the same emulators through
// Endpoints.Env.
package npmemu
