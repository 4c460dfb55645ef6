package controller

import (
	"maps"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reroll/reroll/pkg/plan"
)

// Why pending changes are tracked apart from the queue.
//
// On first install reroll writes one adoption PATCH per opted-in workload:
// 10,000 of them at 100 QPS take 100 s. A config change made meanwhile must
// not wait behind them, and it must not be lost either. Two things keep it:
//
//   - Priority. A workload with a pending consumed change is urgent: the
//     queue (priorityQueue) hands it out before every workload that is only
//     being adopted, re-checked or resynced.
//   - A baseline. A change to an object consumed by a workload not adopted
//     yet would otherwise be adopted as if it had always been there, and
//     never rolled. So the change remembers the object as reroll saw it
//     before the change; the syncs until the change is settled compare
//     against that too (see plan in sync.go), and roll if a key the
//     workload consumes changed.
//
// A workload's pending change is settled by the first sync that reads the
// caches after it and finishes without being held or failing; a change
// arriving while that sync runs stays pending for the next one.

// changeTracker remembers, per workload, that a consumed change is pending,
// and for a workload not adopted yet, the consumed objects as they were
// before their first pending change. It is safe for concurrent use.
type changeTracker struct {
	mu      sync.Mutex
	pending map[workloadKey]*pendingChange
	// seq numbers the changes, so a sync settles only what it saw.
	seq uint64
}

// pendingChange is one workload's pending change.
type pendingChange struct {
	// seq is the number of the latest change.
	seq uint64
	// before holds, per object changed before the workload was adopted,
	// the cached object as it was before its first pending change.
	before map[plan.ConfigRef]metav1.Object
}

// newChangeTracker returns an empty tracker.
func newChangeTracker() *changeTracker {
	return &changeTracker{pending: map[workloadKey]*pendingChange{}}
}

// changed records a change of ref consumed by key. old is the object before
// the change when key is not adopted yet, nil otherwise; only the first one
// per object is kept, as the workload's Pods run what was there before any
// change reroll saw. It reports whether it kept old.
func (t *changeTracker) changed(key workloadKey, ref plan.ConfigRef, old metav1.Object) (kept bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	p := t.pending[key]
	if p == nil {
		p = &pendingChange{}
		t.pending[key] = p
	}
	p.seq = t.seq
	if old == nil {
		return false
	}
	if p.before == nil {
		p.before = map[plan.ConfigRef]metav1.Object{}
	}
	if _, had := p.before[ref]; had {
		return false
	}
	p.before[ref] = old
	return true
}

// waitsOn reports whether key still waits for a sync against ref as it was
// at resourceVersion, before a change (see pendingstore.go).
func (t *changeTracker) waitsOn(key workloadKey, ref plan.ConfigRef, resourceVersion string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending[key]
	if p == nil {
		return false
	}
	old, ok := p.before[ref]
	return ok && old.GetResourceVersion() == resourceVersion
}

// urgent reports whether key has a pending change.
func (t *changeTracker) urgent(key workloadKey) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.pending[key]
	return ok
}

// snapshot returns what a sync of key starting now settles when it
// finishes: the number of the latest pending change (0 for none), and the
// objects as they were before the workload's first pending changes. The
// map is the sync's own copy: the handlers add to the tracker's while the
// sync reads it.
func (t *changeTracker) snapshot(key workloadKey) (seq uint64, before map[plan.ConfigRef]metav1.Object) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending[key]
	if p == nil {
		return 0, nil
	}
	return p.seq, maps.Clone(p.before)
}

// settle records that a sync of key, which took the snapshot (seq, seen),
// finished. If no change came after seq, the sync read the content of every
// change, and key's pending change is forgotten. Otherwise the change stays
// pending, but not the baselines this sync already compared against, nor,
// when it rolled the workload, any baseline at all: its Pods restart with
// the content the sync read and recorded, and the recorded state is the
// only baseline from then on.
func (t *changeTracker) settle(key workloadKey, seq uint64, seen map[plan.ConfigRef]metav1.Object, rolled bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending[key]
	switch {
	case p == nil:
	case p.seq == seq:
		delete(t.pending, key)
	case rolled:
		p.before = nil
	default:
		for ref, obj := range seen {
			if p.before[ref] == obj {
				delete(p.before, ref)
			}
		}
	}
}

// drop drops the pending change of a workload that is gone or no longer
// opted in.
func (t *changeTracker) drop(key workloadKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, key)
}

// withBaselines returns the workloads that keep a baseline.
func (t *changeTracker) withBaselines() []workloadKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []workloadKey
	for key, p := range t.pending {
		if len(p.before) > 0 {
			keys = append(keys, key)
		}
	}
	return keys
}

// dropBaselines forgets key's baselines; its change stays pending.
func (t *changeTracker) dropBaselines(key workloadKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.pending[key]; p != nil {
		p.before = nil
	}
}
