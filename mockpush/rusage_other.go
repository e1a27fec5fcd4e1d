//go:build !unix

package mockpush

// processStats is not available on this system.
func processStats() *ProcessStats { return nil }
