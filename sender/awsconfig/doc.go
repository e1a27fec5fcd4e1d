// Package awsconfig builds Salvo's AWS clients (SQS, S3, DynamoDB) from flags and the
// standard AWS environment variables: one endpoint for every service or one per service,
// region, static credentials for emulators, the default credential chain for real AWS, and
// path-style S3 addressing for emulators.
//
// Usage in a subcommand:
//
//	cfg := awsconfig.FromEnv(os.Getenv)
//	cfg.RegisterFlags(fs)
//	if err := fs.Parse(args); err != nil {
//		return err
//	}
//	clients, err := cfg.Clients(ctx)
//	if err != nil {
//		return err
//	}
//	q, err := sqs.Open(ctx, clients.SQS, names.BatchQueue, sqs.Options{})
//
// Against LocalStack it is enough to export AWS_ENDPOINT_URL=http://127.0.0.1:4566 and
// AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test; against real AWS, set AWS_REGION and
// let the default credential chain find the task role or profile.
package awsconfig
