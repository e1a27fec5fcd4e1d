package diskregistry

import "syscall"

// dropPages tells the kernel the mapped pages of b are not needed for now: they leave the
// process's resident set and stay in the page cache, and the next read maps them again.
func dropPages(b []byte) error { return syscall.Madvise(b, syscall.MADV_DONTNEED) }
