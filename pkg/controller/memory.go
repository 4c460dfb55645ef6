package controller

import (
	"slices"
	"sync"
	"time"

	"github.com/reroll/reroll/pkg/plan"
)

// workloadMemory is what the controller remembers of workloads between
// syncs, behind one lock. Only inFlight and patchedFrom matter for
// correctness; the rest improves messages and dry runs, and losing all of it
// (a restart) loses no correctness: the state that matters is on the
// workloads themselves.
type workloadMemory struct {
	mu sync.Mutex
	// inFlight holds when each running sync started, for health checks.
	inFlight map[workloadKey]time.Time
	// patchedFrom holds, per workload reroll patched, the resourceVersion
	// it patched, until the cache shows a newer one (cacheBehindOwnWrite).
	patchedFrom map[workloadKey]string
	// lastDigests holds, per workload, the cached digests of each object it
	// consumed at its last sync, so Rolled Events can name changed keys.
	// The maps are shared with the cache and never written.
	lastDigests map[workloadKey]map[plan.ConfigRef]map[string]string
	// dryRunStates stands in for the consumed annotation under --dry-run, so
	// that a dry run reports rolls after its first (would-be) baseline.
	dryRunStates map[workloadKey]string
	// holds holds why each held workload's roll waits (see gate.go), so
	// that a hold is reported when it starts, not at every look.
	holds map[workloadKey]holdReason
	// haltsReported holds the failed rollouts already reported as halting
	// a change, so the failed workload gets one Event per change.
	haltsReported map[workloadKey]plan.ChangeID
}

// newWorkloadMemory returns an empty workloadMemory.
func newWorkloadMemory() *workloadMemory {
	return &workloadMemory{
		inFlight:      map[workloadKey]time.Time{},
		patchedFrom:   map[workloadKey]string{},
		lastDigests:   map[workloadKey]map[plan.ConfigRef]map[string]string{},
		dryRunStates:  map[workloadKey]string{},
		holds:         map[workloadKey]holdReason{},
		haltsReported: map[workloadKey]plan.ChangeID{},
	}
}

// syncStarted records that a sync of key started at start.
func (m *workloadMemory) syncStarted(key workloadKey, start time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inFlight[key] = start
}

// syncEnded records that the sync of key ended.
func (m *workloadMemory) syncEnded(key workloadKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.inFlight, key)
}

// longestSync returns the workload whose running sync started first, and
// when; ok is false when no sync runs.
func (m *workloadMemory) longestSync() (key workloadKey, start time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.inFlight {
		if !ok || s.Before(start) {
			key, start, ok = k, s, true
		}
	}
	return key, start, ok
}

// patched records that reroll patched key when the cache held version
// from, and that the patch made version to.
func (m *workloadMemory) patched(key workloadKey, from, to string) {
	if from == to {
		return // the patch changed nothing: nothing to wait for
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.patchedFrom[key] = from
}

// cacheBehindOwnWrite reports whether the cached workload is still the
// version reroll last patched, so its own write has not reached the cache.
// Any other resourceVersion is that write or newer, and clears the mark.
func (m *workloadMemory) cacheBehindOwnWrite(key workloadKey, resourceVersion string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	from, ok := m.patchedFrom[key]
	if ok && from == resourceVersion {
		return true
	}
	delete(m.patchedFrom, key)
	return false
}

// rememberDigests records the digests a workload consumed at this sync, for
// the next Rolled message.
func (m *workloadMemory) rememberDigests(key workloadKey, digests map[plan.ConfigRef]map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastDigests[key] = digests
}

// digestsAtLastSync returns what rememberDigests last recorded for key.
func (m *workloadMemory) digestsAtLastSync(key workloadKey) map[plan.ConfigRef]map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastDigests[key]
}

// rememberDryRunState records the consumed state a dry run would have
// written on key.
func (m *workloadMemory) rememberDryRunState(key workloadKey, state string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dryRunStates[key] = state
}

// dryRunState returns the state rememberDryRunState recorded for key.
func (m *workloadMemory) dryRunState(key workloadKey) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.dryRunStates[key]
	return v, ok
}

// held records that key's roll waits for reason, and reports whether that
// is new (the key was not held, or for another reason).
func (m *workloadMemory) held(key workloadKey, reason holdReason) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	was, ok := m.holds[key]
	m.holds[key] = reason
	return !ok || was != reason
}

// released records that key's roll no longer waits, and returns the reason
// it waited for, if it did.
func (m *workloadMemory) released(key workloadKey) (holdReason, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	was, ok := m.holds[key]
	delete(m.holds, key)
	return was, ok
}

// heldFor returns the workloads held for one of reasons.
func (m *workloadMemory) heldFor(reasons ...holdReason) []workloadKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []workloadKey
	for key, r := range m.holds {
		if slices.Contains(reasons, r) {
			keys = append(keys, key)
		}
	}
	return keys
}

// heldCounts returns how many workloads are held, by reason.
func (m *workloadMemory) heldCounts() map[holdReason]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := map[holdReason]int{}
	for _, r := range m.holds {
		counts[r]++
	}
	return counts
}

// haltToReport reports whether the failed rollout of key halting change c
// has not been reported yet, and marks it reported.
func (m *workloadMemory) haltToReport(key workloadKey, c plan.ChangeID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.haltsReported[key] == c {
		return false
	}
	m.haltsReported[key] = c
	return true
}

// forget drops everything remembered of a workload that is gone or no
// longer opted in, except a sync in flight.
func (m *workloadMemory) forget(key workloadKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.lastDigests, key)
	delete(m.dryRunStates, key)
	delete(m.patchedFrom, key)
	delete(m.holds, key)
	delete(m.haltsReported, key)
}
