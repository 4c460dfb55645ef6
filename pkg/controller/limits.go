package controller

import (
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/reroll/reroll/pkg/plan"
)

// The memory behind two rollout-safety rules (plan.PacingRule and
// plan.FlapRule): each is kept in memory only, and a restart resets it. That
// loses no safety that matters: the halt and the waves are derived from the
// cluster's state, and these only spread rolls over time. The gatherer
// (gather.go) reads them; rollSlots.claim (inflight.go) takes a pacing slot.

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

// peek returns the earliest time key may roll: its own slot, or else the
// slot it would be given now, without reserving it; zero without pacing.
func (p *pacer) peek(key workloadKey) time.Time {
	if p.interval == 0 {
		return time.Time{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if slot, ok := p.slots[key]; ok {
		return slot
	}
	if now := p.clock.Now(); p.next.Before(now) {
		return now
	}
	return p.next
}

// release drops the slot of a workload that no longer needs one.
func (p *pacer) release(key workloadKey) {
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

// history returns when key rolled within the window, oldest first, and
// forgets the older rolls.
func (f *flapBreaker) history(key workloadKey) []time.Time {
	if f.limit.N == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	recent := f.rolls[key]
	for len(recent) > 0 && !recent[0].Add(f.limit.Window).After(now) {
		recent = recent[1:]
	}
	f.rolls[key] = recent
	return slices.Clone(recent)
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

// clearHistory drops the history of a workload that is gone.
func (f *flapBreaker) clearHistory(key workloadKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rolls, key)
}
