//go:build unix

package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestMain runs main instead of the tests when the test binary is started
// as pause by TestExitsZeroOnSIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("PAUSE_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestExitsZeroOnSIGTERM checks that pause keeps running until SIGTERM
// and then exits 0, as the kubelet expects of a sandbox.
func TestExitsZeroOnSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "PAUSE_TEST_RUN_MAIN=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// A SIGCHLD must not stop it. Give it time to install its handlers
		// first: before that, SIGCHLD is ignored anyway but SIGTERM kills.
		time.Sleep(200 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGCHLD)
		select {
		case err := <-done:
			t.Fatalf("pause exited on SIGCHLD: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		_ = cmd.Process.Signal(sig)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("after %v: %v, want exit status 0", sig, err)
			}
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("pause still running 5s after %v", sig)
		}
	}
}

// TestReapChildren checks that an exited child is reaped: afterwards there
// is nothing left to wait for.
func TestReapChildren(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) on PATH")
	}
	// ForkExec rather than os/exec, whose Wait would reap it for us.
	pid, err := syscall.ForkExec(truePath, []string{"true"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Until the child has exited, reapChildren may find nothing to reap.
	deadline := time.Now().Add(5 * time.Second)
	for {
		reapChildren()
		var status syscall.WaitStatus
		_, err := syscall.Wait4(pid, &status, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.ECHILD) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d not reaped: Wait4 says %v", pid, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
