// Package localstore holds Salvo's embedded storage backends: Store, a sender.ObjectStore on
// a local directory (S3 in production), and Records, a sender.RecordStore with
// compare-and-set versions (DynamoDB conditional writes in production), in memory or in a
// directory of JSON files.
//
// Object keys are "/"-separated paths that map to files under the directory; keys that
// could leave it ("..", absolute paths, empty segments) are refused with an error naming the
// key. Writes are atomic (temporary file, then rename), lists are sorted, and a missing key
// gives an error wrapping sender.ErrNotFound.
//
//	objects, err := localstore.Open(dir)
//	if err != nil {
//		return err
//	}
//	err = objects.Put(ctx, "campaigns/c42/manifest.json", manifest)
//	keys, err := objects.List(ctx, "campaigns/c42/")
//
//	records := localstore.NewRecords()
//	v, err := records.CompareAndSwap(ctx, "campaigns/c42", 0, rec) // create; v == 1
//	_, err = records.CompareAndSwap(ctx, "campaigns/c42", 0, rec)  // errors.Is(err, sender.ErrConflict)
package localstore
