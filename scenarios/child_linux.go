package scenarios

import "syscall"

// childAttr makes the mock child process die with the benchmark, even when the benchmark is
// killed without a chance to stop it.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }
