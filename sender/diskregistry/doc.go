// Package diskregistry is the embedded device registry: one compact file that maps user IDs
// to their devices and implements sender.Registry.
//
// The file (dir/registry.bin) holds a 128-byte header with a magic string, a format version
// and a CRC-32C per section; the users' records in ID order, with APNs tokens stored as the
// bytes their hex spells and FCM tokens packed six bits per character; a small table of app
// and locale strings; and an open-addressing hash index from user ID to record. Open maps
// the file into memory and checks its checksums, allocating nothing per user, so millions of
// users load in well under a second; a lookup costs a hash, a probe or two and the copy of
// the tokens it returns, and a user asked for right after the one before it in ID order is
// found in the next record without the index. docs/registry.md describes the format byte
// by byte.
//
// The mapped pages a lookup reads stay in the process's resident set until DropResident;
// LimitResident drops them as lookups in ID order go, so that resolving an audience exported
// in ID order keeps about that much of the file resident rather than all of it.
//
// Writing goes through a Writer, which takes users in increasing ID order and publishes the
// file with a rename on Commit:
//
//	w, err := diskregistry.NewWriter(dir)
//	if err != nil {
//		return err
//	}
//	defer w.Abort() // no-op after Commit
//	for _, u := range users { // sorted by ID
//		if err := w.Add(u.ID, u.Devices); err != nil {
//			return err
//		}
//	}
//	if err := w.Commit(); err != nil {
//		return err
//	}
//
//	reg, err := diskregistry.Open(dir)
//	if err != nil {
//		return err // a damaged file gives a *CorruptError naming the file and offset
//	}
//	defer reg.Close()
//	devices, err := reg.Devices(ctx, []string{"u00000001", "nobody"}) // devices[1] == nil
//
// The synthetic registries of the benchmarks come from loadgen.WriteRegistry
// ("salvo gen registry").
package diskregistry
