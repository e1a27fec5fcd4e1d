//go:build !linux

package main

import "syscall"

// childAttr: without Pdeathsig, the rig's own stop ends its processes.
func childAttr() *syscall.SysProcAttr { return nil }
