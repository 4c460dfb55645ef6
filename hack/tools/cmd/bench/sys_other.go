//go:build !linux

package main

import "syscall"

// childSysProcAttr puts a process the bench starts in its own process group.
// The measurements read /proc, so the bench only works on Linux anyway.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
