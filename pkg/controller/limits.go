package controller

import (
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/reroll/reroll/pkg/plan"
)

// The stateful parts of the rollout-safety policies (gate.go): each is
// kept in memory only, and a restart resets it. That loses no safety that
// matters: the halt and the waves are derived from the cluster's state, and
// these only spread rolls over time.

// pacer spaces rolls over all workloads at most qps per second
// (--max-rollouts-per-second). Unlike a token bucket polled by every
// waiting workload, it hands each waiting workload its own future slot, so
// a workload is synced again exactly when it may roll, and the rate is
// exact however many wait.
type pacer struct {
	clock    clock.PassiveClock
	interval time.Duration

	mu sync.Mutex
	// next is the earliest time the next new slot can start.
	next time.Time
	// slots holds the slot reserved by each waiting workload.
	slots map[workloadKey]time.Time
}

// newPacer returns a pacer of qps rolls per second; 0 means no limit.
func newPacer(clk clock.PassiveClock, qps float64) *pacer {
	p := &pacer{clock: clk, slots: map[workloadKey]time.Time{}}
	if qps > 0 {
		p.interval = time.Duration(float64(time.Second) / qps)
	}
	return p
}

// wait returns how long key must wait before it may roll, reserving a slot
// for it if it has none; zero means roll now (and uses the slot).
func (p *pacer) wait(key workloadKey) time.Duration {
	if p.interval == 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	slot, ok := p.slots[key]
	if !ok {
		slot = p.next
		if slot.Before(now) {
			slot = now
		}
		p.next = slot.Add(p.interval)
		p.slots[key] = slot
	}
	if wait := slot.Sub(now); wait > 0 {
		return wait
	}
	delete(p.slots, key)
	return 0
}

// forget drops the slot of a workload that no longer needs one.
func (p *pacer) forget(key workloadKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.slots, key)
}

// flapBreaker remembers when each workload was rolled, to hold a workload
// that rolled limit.n times within limit.window (--max-rolls-per-workload).
type flapBreaker struct {
	clock clock.PassiveClock
	limit plan.RollLimit

	mu    sync.Mutex
	rolls map[workloadKey][]time.Time
}

// newFlapBreaker returns a flapBreaker; a zero limit holds nothing.
func newFlapBreaker(clk clock.PassiveClock, limit plan.RollLimit) *flapBreaker {
	return &flapBreaker{clock: clk, limit: limit, rolls: map[workloadKey][]time.Time{}}
}

// wait returns how long key must wait before it may roll again: zero
// while it rolled fewer than n times within the window.
func (f *flapBreaker) wait(key workloadKey) time.Duration {
	if f.limit.N == 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	recent := f.rolls[key]
	for len(recent) > 0 && !recent[0].Add(f.limit.Window).After(now) {
		recent = recent[1:]
	}
	f.rolls[key] = recent
	if len(recent) < f.limit.N {
		return 0
	}
	return recent[len(recent)-f.limit.N].Add(f.limit.Window).Sub(now)
}

// rolled records that key was rolled now.
func (f *flapBreaker) rolled(key workloadKey) {
	if f.limit.N == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rolls[key] = append(f.rolls[key], f.clock.Now())
}

// forget drops the history of a workload that is gone.
func (f *flapBreaker) forget(key workloadKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rolls, key)
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

// forget drops a workload that is gone or no longer opted in. It reports
// whether it was in flight.
func (s *inflightSet) forget(key workloadKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.in(key)
	delete(s.reserved, key)
	delete(s.observed, key)
	return was
}

// count returns how many workloads are in flight.
func (s *inflightSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countLocked()
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
