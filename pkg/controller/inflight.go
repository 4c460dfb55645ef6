package controller

import (
	"sync"

	"github.com/reroll/reroll/pkg/plan"
)

// The whole life of a roll's in-flight place (--max-inflight-rollouts):
// the set of incomplete rollouts the informers keep current, the claim a
// roll makes once the rules let it go, its release when the write does not
// happen, and its end when the workload completes or goes. Nothing else
// touches the set.

// rollSlots is the in-flight set and the pacer as one claim a roll makes
// once the rules let it go.
type rollSlots struct {
	inflight *inflightSet
	pacer    *pacer
	// maxInflight is --max-inflight-rollouts, qps --max-rollouts-per-second.
	maxInflight int
	qps         float64
	// wakeHeld syncs the rolls the in-flight cap holds, when a place frees.
	wakeHeld func()
}

// claim makes the judgement of the in-flight cap and the pacing atomic
// against the other workers. The rules (plan.InflightRule, plan.PacingRule)
// judged facts gathered a moment ago, and two workers may both have seen
// the last free place or the same free slot; claim reserves key's in-flight
// place (under a cap) as of the cached generation, and takes its pacing
// slot, or returns the hold that stops it. A claimed roll that is not
// written is released.
func (s rollSlots) claim(key workloadKey, generation int64) plan.Hold {
	if s.maxInflight > 0 && !s.inflight.reserve(key, generation, s.maxInflight) {
		return plan.InflightHold(s.maxInflight)
	}
	if wait := s.pacer.wait(key); wait > 0 {
		s.inflight.release(key)
		return plan.PacedHold(wait, s.qps)
	}
	return plan.Hold{}
}

// release gives back the in-flight place of a claimed roll whose write did
// not happen.
func (s rollSlots) release(key workloadKey) {
	s.inflight.release(key)
}

// observe records whether the cache shows key's rollout in flight at
// generation, and wakes the held rolls when it completed.
func (s rollSlots) observe(key workloadKey, inflight bool, generation int64) {
	if s.inflight.observe(key, inflight, generation) {
		s.wakeHeld()
	}
}

// gone drops a workload that is gone or no longer opted in, and wakes the
// held rolls when it was in flight.
func (s rollSlots) gone(key workloadKey) {
	if s.inflight.remove(key) {
		s.wakeHeld()
	}
}

// inflightSet tracks the opted-in workloads whose rollout has not completed,
// whoever started it (--max-inflight-rollouts): the informers' handlers
// keep it current from the cached statuses, and a roll reserves its place
// at once, until the cache shows the generation its write made.
type inflightSet struct {
	mu sync.Mutex
	// observed holds the workloads the cache shows in flight.
	observed map[workloadKey]bool
	// reserved holds, per workload reroll is rolling, the generation the
	// cache showed when it decided to: until a newer one shows, its write
	// has not reached the cache, and the workload counts as in flight.
	reserved map[workloadKey]int64
}

// newInflightSet returns an empty inflightSet.
func newInflightSet() *inflightSet {
	return &inflightSet{observed: map[workloadKey]bool{}, reserved: map[workloadKey]int64{}}
}

// observe records a workload's state as the cache shows it at generation.
// It reports whether the workload stopped being in flight.
func (s *inflightSet) observe(key workloadKey, inflight bool, generation int64) (completed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.in(key)
	if g, ok := s.reserved[key]; ok && generation > g {
		delete(s.reserved, key)
	}
	if inflight {
		s.observed[key] = true
	} else {
		delete(s.observed, key)
	}
	return was && !s.in(key)
}

// in reports whether key is in flight; the caller holds the lock.
func (s *inflightSet) in(key workloadKey) bool {
	_, reserved := s.reserved[key]
	return reserved || s.observed[key]
}

// reserve puts key in flight, as of the cached generation, if fewer than
// limit workloads are or if it already is; it reports whether it did. A
// limit of 0 always reserves.
func (s *inflightSet) reserve(key workloadKey, generation int64, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit > 0 && !s.in(key) && s.countLocked() >= limit {
		return false
	}
	s.reserved[key] = generation
	return true
}

// release drops a reservation whose write did not happen.
func (s *inflightSet) release(key workloadKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.reserved, key)
}

// remove drops a workload that is gone or no longer opted in. It reports
// whether it was in flight.
func (s *inflightSet) remove(key workloadKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.in(key)
	delete(s.reserved, key)
	delete(s.observed, key)
	return was
}

// count returns how many workloads are in flight.
func (s *inflightSet) count() int {
	n, _ := s.countWith(workloadKey{})
	return n
}

// countWith returns how many workloads are in flight, and whether key is.
func (s *inflightSet) countWith(key workloadKey) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countLocked(), s.in(key)
}

// countLocked is count for a caller that holds the lock.
func (s *inflightSet) countLocked() int {
	n := len(s.observed)
	for key := range s.reserved {
		if !s.observed[key] {
			n++
		}
	}
	return n
}
