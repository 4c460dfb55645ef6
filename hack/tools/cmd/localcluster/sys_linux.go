package main

import (
	"os"
	"syscall"
	"unsafe"
)

// componentSysProcAttr puts a control-plane process in its own process group
// (so a terminal's Ctrl-C reaches only localcluster, which stops the
// components in order) and makes the kernel kill it if localcluster dies
// without tearing down (e.g. SIGKILL).
func componentSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// commandSysProcAttr keeps the user command in localcluster's process group
// (it stays in the terminal's foreground and can read stdin) and sends it
// SIGTERM if localcluster dies without tearing down.
func commandSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// inForegroundOfTerminal reports whether stdin is a terminal whose
// foreground process group is localcluster's own. A SIGINT then most likely
// came from Ctrl-C, which the terminal already delivered to the user command
// in the same process group.
func inForegroundOfTerminal() bool {
	var pgrp int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, os.Stdin.Fd(), syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp)))
	return errno == 0 && int(pgrp) == syscall.Getpgrp()
}
