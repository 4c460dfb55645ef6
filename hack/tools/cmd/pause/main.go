//go:build unix

// Command pause is the process of reroll's pod sandbox image
// (reroll.local/pause:1, built by hack/tools/cmd/images): it holds the pod's
// namespaces open by doing nothing until it is told to stop.
//
// It may run as PID 1 of the pod's PID namespace (shareProcessNamespace),
// where orphaned processes are re-parented to it, so it reaps every child
// that exits instead of leaving zombies behind. SIGINT and SIGTERM end it
// with status 0, as the kubelet expects of a sandbox it stops.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// main waits for signals: SIGCHLD reaps, SIGINT and SIGTERM exit 0.
func main() {
	// Buffered so that a burst of SIGCHLDs arriving while reaping is not
	// lost entirely: one pending SIGCHLD is enough to reap them all.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reapChildren()
			continue
		}
		fmt.Fprintf(os.Stderr, "pause: got %v, exiting\n", sig)
		os.Exit(0)
	}
}

// reapChildren waits for every child that has exited, without blocking:
// signals coalesce, so one SIGCHLD may stand for several exits.
func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		// 0: children remain but none has exited; ECHILD: no children.
		if pid <= 0 || err != nil {
			return
		}
	}
}
