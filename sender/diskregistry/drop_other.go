//go:build !linux

package diskregistry

// dropPages does nothing where the registry is not mapped through madvise-able pages.
func dropPages([]byte) error { return nil }
