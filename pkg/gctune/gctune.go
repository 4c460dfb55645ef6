// Package gctune is reroll's garbage-collector policy: eager while the
// informers list, moderate once the caches hold the cluster.
package gctune

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// InitialSyncGCPercent is the GOGC used while the informers list: the
// initial list is mostly garbage (every object is decoded several times and
// its values are dropped by the cache transform), so collecting it eagerly
// keeps the start-up peak near the cached size instead of twice it.
const InitialSyncGCPercent = 25

// SteadyGCPercent is the GOGC after the initial sync. reroll's live heap is
// almost all informer cache, which grows with the cluster, while its
// garbage is small watch events and patches. Go's default of 100 lets the
// heap reach twice the cache; 50 caps it at one and a half times, at the
// cost of collecting twice as often a heap that is cheap to collect.
const SteadyGCPercent = 50

// Tune sets GOGC to InitialSyncGCPercent until synced reports true, then to
// SteadyGCPercent; if ctx ends first, it stays at InitialSyncGCPercent until
// exit. A GOGC set in the environment is left alone.
func Tune(ctx context.Context, synced func() bool) {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(InitialSyncGCPercent)
	go func() {
		if wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
			return synced(), nil
		}) == nil {
			debug.SetGCPercent(SteadyGCPercent)
		}
	}()
}
