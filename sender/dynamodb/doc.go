// Package dynamodb keeps Salvo's state in Amazon DynamoDB (aws-sdk-go-v2):
//
//   - Registry (sender.Registry): the device registry, one item per user, read with
//     BatchGetItem of 100 keys; LoadRegistry fills it with BatchWriteItem.
//   - RecordStore (sender.RecordStore): versioned records with conditional writes, the
//     compare-and-set behind the GO button and worker readiness.
//   - Ledger (sender.Ledger): per campaign and batch range, each recipient's state
//     (accepted, rejected, failed) and a lease held by one send loop, so that a redelivered
//     batch does not push anyone twice.
//
// CreateTables makes the three tables (for the setup command); docs/aws.md lists their
// schemas.
//
//	clients, _ := awsconfig.FromEnv(os.Getenv).Clients(ctx)
//	reg, err := dynamodb.NewRegistry(clients.DynamoDB, "salvo-registry", dynamodb.Options{})
//	if err != nil {
//		return err
//	}
//	devices, err := reg.Devices(ctx, []string{"u1", "u2"}) // devices[i] == nil: unknown user
//
//	records, _ := dynamodb.NewRecordStore(clients.DynamoDB, "salvo-records")
//	_, err = records.CompareAndSwap(ctx, "campaigns/c1/go", 0, press)
//	if errors.Is(err, sender.ErrConflict) {
//		// someone pressed GO first
//	}
package dynamodb
