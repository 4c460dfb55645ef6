package signals

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// The first signal cancels the context with the signal as the cause; the
// second calls the forced exit.
func TestSignalsCancelThenExit(t *testing.T) {
	exited := make(chan struct{})
	ctx := setup(context.Background(), func() { close(exited) })
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("context not canceled by SIGTERM")
	}
	var se *ShutdownError
	if !errors.As(context.Cause(ctx), &se) || se.Signal != syscall.SIGTERM {
		t.Fatalf("cause = %v, want SIGTERM", context.Cause(ctx))
	}
	select {
	case <-exited:
		t.Fatal("exited on the first signal")
	default:
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("second signal did not force the exit")
	}
}
