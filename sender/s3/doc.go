// Package s3 implements sender.ObjectStore on Amazon S3 (aws-sdk-go-v2): resolved
// campaigns, manifests, feedback files and run results. Large objects go up as multipart
// uploads and come down as parallel ranged GETs, so that preparing a send (every worker
// loading its campaign shard) is bounded by bandwidth rather than by one stream.
//
//	store, err := s3.New(clients.S3, "salvo", s3.Options{PartSize: 16 << 20})
//	if err != nil {
//		return err
//	}
//	if err := store.Put(ctx, "campaigns/c1/shard-0", shard); err != nil {
//		return err
//	}
//	data, err := store.Get(ctx, "campaigns/c1/shard-0")
//	if errors.Is(err, sender.ErrNotFound) {
//		...
//	}
//
// Emulators need a client with path-style addressing and checksums "when required"; see
// sender/awsconfig.
package s3
