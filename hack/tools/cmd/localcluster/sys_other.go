//go:build !linux

package main

import "syscall"

// componentSysProcAttr puts a control-plane process in its own process group.
func componentSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// commandSysProcAttr keeps the user command in localcluster's process group.
func commandSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}

// inForegroundOfTerminal is not implemented here: SIGINT is always forwarded.
func inForegroundOfTerminal() bool { return false }
