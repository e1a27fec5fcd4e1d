//go:build !linux

package scenarios

import "syscall"

// childAttr: other systems have no parent-death signal; the benchmark stops the mock itself.
func childAttr() *syscall.SysProcAttr { return nil }
