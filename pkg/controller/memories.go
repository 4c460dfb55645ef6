package controller

import (
	"time"

	"k8s.io/utils/clock"

	"github.com/reroll/reroll/pkg/plan"
)

// workloadMemory is everything the controller remembers of workloads
// between syncs, as one value with one forget. Only writes matters for
// correctness, and changes (with the pending store) for a change made
// before its consumers were adopted; the rest spreads rolls over time or
// improves health checks, messages and dry runs. Losing it all (a restart)
// loses no correctness: the state that matters is on the workloads
// themselves.
type workloadMemory struct {
	// syncStarts holds when each running sync started, for health checks.
	syncStarts *keyedMemory[time.Time]
	// writes holds reroll's own writes not yet in the cache.
	writes ownWrites
	// dryRunStates holds, under --dry-run, the consumed state reroll would
	// have written.
	dryRunStates *keyedMemory[string]
	// lastDigests holds the digests each workload read at its last sync, so
	// Rolled Events name changed keys; holds, the holds reported.
	lastDigests *keyedMemory[map[plan.ConfigRef]map[string]string]
	holds       holdBook
	// bursts holds each workload's pending burst of config changes, so a
	// sync queued early by anything else cannot cut the burst short.
	bursts *burstTracker
	// changes holds each workload's pending consumed change: it makes the
	// workload urgent in the queue, and keeps a baseline for one not
	// adopted yet (changes.go).
	changes *changeTracker
	// flaps remembers the rolls of each workload, for the flap breaker;
	// slots are the in-flight places and pacing slots rolls claim
	// (limits.go, inflight.go).
	flaps *flapBreaker
	slots rollSlots
	// bakes holds what reroll saw of the rollouts it started, for their
	// bake (judge.go), and judged the last state it judged each in.
	bakes  *keyedMemory[bakeMemo]
	judged *keyedMemory[plan.RolloutState]
	// settled tells the pending store that a workload it may keep a change
	// for is gone (pendingstore.go), so that it drops what no one waits
	// for; released stops watching its pods (pods.go).
	settled  func()
	released func(workloadKey)
}

// newWorkloadMemory returns an empty memory for decisions d; wakeHeld syncs
// the rolls the in-flight cap holds, when a place frees.
func newWorkloadMemory(clk clock.PassiveClock, d Decisions, wakeHeld func()) *workloadMemory {
	return &workloadMemory{
		syncStarts:   newKeyedMemory[time.Time](),
		writes:       ownWrites{from: newKeyedMemory[string]()},
		dryRunStates: newKeyedMemory[string](),
		lastDigests:  newKeyedMemory[map[plan.ConfigRef]map[string]string](),
		holds:        newHoldBook(),
		bursts:       newBurstTracker(clk),
		changes:      newChangeTracker(),
		flaps:        newFlapBreaker(clk, d.MaxRollsPerWorkload),
		slots: rollSlots{inflight: newInflightSet(), pacer: newPacer(clk, d.MaxRolloutsPerSecond),
			maxInflight: d.MaxInflightRollouts, qps: d.MaxRolloutsPerSecond, wakeHeld: wakeHeld},
		bakes:  newKeyedMemory[bakeMemo](),
		judged: newKeyedMemory[plan.RolloutState](),
	}
}

// forget drops what is remembered of a workload that is gone or no longer
// opted in.
func (m *workloadMemory) forget(key workloadKey) {
	m.writes.from.delete(key)
	m.lastDigests.delete(key)
	m.dryRunStates.delete(key)
	m.holds.clear(key)
	m.bursts.cancel(key)
	m.changes.drop(key)
	m.slots.pacer.release(key)
	m.flaps.clearHistory(key)
	m.bakes.delete(key)
	m.judged.delete(key)
	if m.settled != nil {
		m.settled()
	}
	if m.released != nil {
		m.released(key)
	}
}

// recentRolls implements rollMemory.
func (m *workloadMemory) recentRolls(key workloadKey) []time.Time { return m.flaps.history(key) }

// paceSlot implements rollMemory.
func (m *workloadMemory) paceSlot(key workloadKey) time.Time { return m.slots.pacer.peek(key) }

// inflight implements rollMemory.
func (m *workloadMemory) inflight(key workloadKey) (int, bool) {
	return m.slots.inflight.countWith(key)
}
