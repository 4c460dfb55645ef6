// Package signals turns SIGINT and SIGTERM into context cancellation.
package signals

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// shutdownSignals are the signals that stop the controller.
var shutdownSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// SetupSignalHandler returns a context that is canceled on the first SIGINT
// or SIGTERM, so the controller can finish in-flight work and release what
// it holds. A second signal exits at once with status 1, for when a graceful
// shutdown hangs. Call it once per process.
func SetupSignalHandler() context.Context {
	return setup(context.Background(), func() { os.Exit(1) })
}

// setup is SetupSignalHandler with the parent context and the forced exit
// injectable, for tests.
func setup(parent context.Context, exit func()) context.Context {
	ctx, cancel := context.WithCancelCause(parent)
	c := make(chan os.Signal, 2)
	signal.Notify(c, shutdownSignals...)
	go func() {
		sig := <-c
		cancel(&ShutdownError{Signal: sig})
		<-c
		exit()
	}()
	return ctx
}

// ShutdownError is the cause of the context's cancellation.
type ShutdownError struct {
	// Signal is the signal received.
	Signal os.Signal
}

// Error implements error.
func (e *ShutdownError) Error() string {
	return "received " + e.Signal.String()
}
