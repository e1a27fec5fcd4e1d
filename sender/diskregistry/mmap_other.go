//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package diskregistry

import (
	"io"
	"os"
)

// loadFile reads the first size bytes of f into memory.
func loadFile(f *os.File, size int) ([]byte, func([]byte) error, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, err
	}
	return b, nil, nil
}
