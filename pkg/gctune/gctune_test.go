package gctune

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// gcPercent returns the current GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// GOGC is eager until the caches sync, then moderate; a GOGC from the
// environment wins.
func TestTune(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())
	t.Setenv("GOGC", "")
	var synced atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	Tune(ctx, synced.Load)
	if p := gcPercent(); p != InitialSyncGCPercent {
		t.Errorf("before sync GOGC = %d, want %d", p, InitialSyncGCPercent)
	}
	synced.Store(true)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return gcPercent() == SteadyGCPercent, nil
	}); err != nil {
		t.Errorf("GOGC stayed %d after sync, want %d", gcPercent(), SteadyGCPercent)
	}

	debug.SetGCPercent(77)
	t.Setenv("GOGC", "77")
	Tune(ctx, synced.Load)
	if p := gcPercent(); p != 77 {
		t.Errorf("with GOGC set, GOGC = %d, want 77", p)
	}
}
