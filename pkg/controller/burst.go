package controller

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Why bursts are tracked apart from the queue.
//
// The debounce promises that a burst of config changes a workload consumes
// rolls it once, at least --debounce after the burst's first change. The
// delaying queue alone cannot keep that promise: it keeps the *earliest*
// due time of a key. When something else queued the workload shortly
// before the burst (reroll's own write, an adoption, a resync, a retry),
// the key comes due early and the sync rolls half the burst; the other
// half rolls a second time a debounce later. A timeline, debounce 1s:
//
//	t=0      reroll's own write arrives; the key is due at t=1s
//	t=0.7s   ConfigMap changes; the queue keeps the earlier t=1s
//	t=1.0s   ConfigMap change is rolled (0.3s after it, not 1s)
//	t=1.0s   Secret changes; due at t=2s
//	t=2.0s   Secret change rolls the workload a second time
//
// So the controller remembers, per workload, when the first change of its
// pending burst arrived. A sync that runs before that burst is due, for
// whatever reason the key was queued, does nothing but requeue the key for
// the rest of the window; the sync at the end of the window rolls the whole
// burst, to the content current then. The queue keeps its plain semantics:
// keys, earliest due time, one worker per key.

// burstTracker remembers, per workload, when the first config change of its
// pending burst arrived, and the burst's window. It is safe for concurrent
// use.
type burstTracker struct {
	clock clock.PassiveClock

	mu sync.Mutex
	// pending holds each pending burst.
	pending map[workloadKey]burst
}

// burst is a pending burst: when its first change arrived, and how long it
// lasts (--debounce, or the workload's own window).
type burst struct {
	start  time.Time
	window time.Duration
}

// newBurstTracker returns an empty tracker.
func newBurstTracker(clk clock.PassiveClock) *burstTracker {
	return &burstTracker{clock: clk, pending: map[workloadKey]burst{}}
}

// changed records that a config change consumed by key arrived now. A
// change inside a pending burst joins it; otherwise it starts a new one of
// window; a window of zero tracks nothing.
func (b *burstTracker) changed(key workloadKey, window time.Duration) {
	if window <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, pending := b.pending[key]; !pending {
		b.pending[key] = burst{start: b.clock.Now(), window: window}
	}
}

// take returns how long a roll of key must still wait for its pending
// burst. When no burst is pending, or the pending one is due, it returns
// zero and forgets the burst: the sync asking is the one that rolls it, to
// the content it reads next, and a change arriving from now on starts a new
// burst.
//
// Call take before reading anything from the caches: a change that arrives
// between the two then starts a new burst, which this sync can at worst
// roll a little early (it already reads the new content), never twice.
func (b *burstTracker) take(key workloadKey) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, pending := b.pending[key]
	if !pending {
		return 0
	}
	wait := calculateBurstWait(p.start, b.clock.Now(), p.window)
	if wait == 0 {
		delete(b.pending, key)
	}
	return wait
}

// cancel drops the pending burst of a workload that is gone or no longer
// opted in.
func (b *burstTracker) cancel(key workloadKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pending, key)
}

// calculateBurstWait returns how long after now a burst whose first change
// arrived at start becomes due, or zero when it is due.
func calculateBurstWait(start, now time.Time, debounce time.Duration) time.Duration {
	if wait := start.Add(debounce).Sub(now); wait > 0 {
		return wait
	}
	return 0
}
