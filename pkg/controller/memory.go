package controller

import (
	"slices"
	"sync"
	"time"

	"github.com/reroll/reroll/pkg/plan"
)

// The small stores of what the controller remembers of workloads between
// syncs (see workloadMemory), each behind its own lock, so that unrelated
// work never waits on one lock.

// keyedMemory is one thing remembered per workload, safe for concurrent
// use.
type keyedMemory[V any] struct {
	mu sync.Mutex
	m  map[workloadKey]V
}

// newKeyedMemory returns an empty keyedMemory.
func newKeyedMemory[V any]() *keyedMemory[V] {
	return &keyedMemory[V]{m: map[workloadKey]V{}}
}

// set remembers v for key.
func (k *keyedMemory[V]) set(key workloadKey, v V) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = v
}

// get returns what is remembered for key.
func (k *keyedMemory[V]) get(key workloadKey) (V, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok
}

// swap remembers v for key and returns what was remembered before.
func (k *keyedMemory[V]) swap(key workloadKey, v V) (old V, had bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	old, had = k.m[key]
	k.m[key] = v
	return old, had
}

// take forgets key and returns what was remembered for it.
func (k *keyedMemory[V]) take(key workloadKey) (V, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	delete(k.m, key)
	return v, ok
}

// update replaces what is remembered for key with what f returns, given
// what was remembered; keep false forgets key instead.
func (k *keyedMemory[V]) update(key workloadKey, f func(old V, had bool) (v V, keep bool)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	old, had := k.m[key]
	if v, keep := f(old, had); keep {
		k.m[key] = v
	} else {
		delete(k.m, key)
	}
}

// delete drops key.
func (k *keyedMemory[V]) delete(key workloadKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
}

// each calls f for every key remembered, under the lock.
func (k *keyedMemory[V]) each(f func(workloadKey, V)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, v := range k.m {
		f(key, v)
	}
}

// longestSync returns, from the start times of the running syncs, the
// workload whose sync started first, and when; ok is false when none runs.
func longestSync(starts *keyedMemory[time.Time]) (key workloadKey, start time.Time, ok bool) {
	starts.each(func(k workloadKey, s time.Time) {
		if !ok || s.Before(start) {
			key, start, ok = k, s, true
		}
	})
	return key, start, ok
}

// ownWrites holds, per workload reroll patched, the resourceVersion it
// patched, until the cache shows a newer one.
type ownWrites struct {
	from *keyedMemory[string]
}

// patched records that reroll patched key when the cache held version
// from, and that the patch made version to.
func (o ownWrites) patched(key workloadKey, from, to string) {
	if from == to {
		return // the patch changed nothing: nothing to wait for
	}
	o.from.set(key, from)
}

// cacheBehindOwnWrite reports whether the cached workload is still the
// version reroll last patched, so its own write has not reached the cache.
// Any other resourceVersion is that write or newer, and clears the mark.
func (o ownWrites) cacheBehindOwnWrite(key workloadKey, resourceVersion string) bool {
	behind := false
	o.from.update(key, func(from string, had bool) (string, bool) {
		behind = had && from == resourceVersion
		return from, behind
	})
	return behind
}

// holdBook holds why each held workload's roll waits, so that a hold is
// reported when it starts, not at every look, and the failed rollouts
// already reported as halting a change, so that the failed workload gets
// one Event per change.
type holdBook struct {
	reasons *keyedMemory[plan.HoldReason]
	halts   *keyedMemory[plan.ChangeID]
}

// newHoldBook returns an empty holdBook.
func newHoldBook() holdBook {
	return holdBook{reasons: newKeyedMemory[plan.HoldReason](), halts: newKeyedMemory[plan.ChangeID]()}
}

// held records that key's roll waits for reason, and reports whether that
// is new (the key was not held, or for another reason).
func (b holdBook) held(key workloadKey, reason plan.HoldReason) bool {
	was, ok := b.reasons.swap(key, reason)
	return !ok || was != reason
}

// released records that key's roll no longer waits, and returns the reason
// it waited for, if it did.
func (b holdBook) released(key workloadKey) (plan.HoldReason, bool) {
	return b.reasons.take(key)
}

// heldFor returns the workloads held for one of reasons.
func (b holdBook) heldFor(reasons ...plan.HoldReason) []workloadKey {
	var keys []workloadKey
	b.reasons.each(func(key workloadKey, r plan.HoldReason) {
		if slices.Contains(reasons, r) {
			keys = append(keys, key)
		}
	})
	return keys
}

// counts returns how many workloads are held, by reason.
func (b holdBook) counts() map[plan.HoldReason]int {
	counts := map[plan.HoldReason]int{}
	b.reasons.each(func(_ workloadKey, r plan.HoldReason) { counts[r]++ })
	return counts
}

// haltToReport reports whether the failed rollout of key halting change c
// has not been reported yet, and marks it reported.
func (b holdBook) haltToReport(key workloadKey, c plan.ChangeID) bool {
	was, _ := b.halts.swap(key, c)
	return was != c
}

// clear drops the holds of a workload that is gone or no longer opted in.
func (b holdBook) clear(key workloadKey) {
	b.reasons.delete(key)
	b.halts.delete(key)
}
