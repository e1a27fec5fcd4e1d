//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package diskregistry

import (
	"os"
	"syscall"
)

// loadFile maps the first size bytes of f read-only. The mapping outlives f; the returned
// function unmaps it. Files are replaced by rename, never rewritten in place, so a mapped
// registry never changes under its reader.
func loadFile(f *os.File, size int) ([]byte, func([]byte) error, error) {
	b, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, syscall.Munmap, nil
}
