package main

import "syscall"

// childSysProcAttr puts a process the bench starts in its own process group,
// so a Ctrl-C in the terminal reaches only the bench, which then stops its
// children in order, and makes the kernel kill the child if the bench dies
// without cleaning up (e.g. SIGKILL).
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
