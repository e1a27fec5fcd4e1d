package main

import "syscall"

// childAttr makes a salvo process die with the rig, even when the rig is killed without a
// chance to stop it.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }
