package controller

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/reroll/reroll/pkg/plan"
)

// The rollout-safety policies: the step between plan and apply that may
// hold a planned roll. A held roll writes nothing; the key is synced again
// when the hold can end (after a delay, or when an event says so), and the
// sync then rolls once, to the content current at that moment. In the order
// they are checked:
//
//   - paused: reroll.dev/paused on the workload or a changed ConfigMap or
//     Secret; ends when the annotation goes.
//   - halted: a consumer that reroll rolled for the same change (object and
//     content) failed, when its previous rollout had completed; ends when
//     it recovers or the object changes again. Derived from the consumers'
//     rollout records and statuses, so it survives restarts.
//   - wave: the change rolls its consumers in waves, and an earlier wave has
//     not completed; ends when it has.
//   - throttled: the workload rolled too often (--max-rolls-per-workload).
//   - inflight: too many rollouts are incomplete (--max-inflight-rollouts).
//   - paced: rolls are spaced over all workloads (--max-rollouts-per-second).

// holdReason is why a planned roll waits; it labels
// reroll_rollouts_held{reason}.
type holdReason string

const (
	holdPaused    holdReason = "paused"
	holdHalted    holdReason = "halted"
	holdWave      holdReason = "wave"
	holdThrottled holdReason = "throttled"
	holdInflight  holdReason = "inflight"
	holdPaced     holdReason = "paced"
	// holdInvalid: a policy annotation is malformed; reported as a Warning
	// InvalidAnnotation and held until it is fixed, never rolled at once.
	holdInvalid holdReason = "invalid"
)

// holdReasons lists every holdReason, for the metric.
var holdReasons = []holdReason{holdPaused, holdHalted, holdWave, holdThrottled, holdInflight, holdPaced, holdInvalid}

// policyRecheck is how often a roll held by a halt, a wave or the in-flight
// cap is looked at again even without an event: kinds whose failure is a
// timeout fail without one.
const policyRecheck = 30 * time.Second

// hold is why, and for how long, a planned roll waits.
type hold struct {
	reason holdReason
	// wait is when to sync the workload again; zero waits for an event.
	wait time.Duration
	// message says why, naming objects and workloads, never values.
	message string
	// failed is, for a halt, the consumer whose rollout failed, and change
	// the change it halts.
	failed workloadKey
	change plan.ChangeID
}

// changedObject is a consumed ConfigMap or Secret whose change a planned
// roll carries.
type changedObject struct {
	ref         plan.ConfigRef
	change      plan.ChangeID
	annotations map[string]string
}

// gateResult is what the gate decides of a planned roll.
type gateResult struct {
	hold hold
	// record is what the roll writes in AnnotationRollout when not held.
	record plan.RolloutRecord
}

// gate decides whether a planned roll goes ahead now. Only rolls are gated:
// adopting, re-baselining and recording references change no pod.
func (c *Controller) gate(key workloadKey, w workload, p plan.Plan, current map[plan.ConfigRef]map[string]string) gateResult {
	now := c.opts.Clock.Now()
	changed := c.changedObjects(key.name.Namespace, p, current)
	r := gateResult{record: plan.RolloutRecord{Started: now, FromComplete: c.rolloutState(w, now) == plan.RolloutComplete}}
	for _, o := range changed {
		r.record.Changes = append(r.record.Changes, o.change)
	}
	slices.Sort(r.record.Changes)
	if h := pauseHold(w, c.namespaceAnnotations(key.name.Namespace), changed); h.reason != "" {
		r.hold = h
		return r
	}
	for _, o := range changed {
		if failed, ok := c.failedConsumer(key, o, now); ok {
			r.hold = hold{reason: holdHalted, failed: failed, change: o.change, wait: policyRecheck,
				message: fmt.Sprintf("the rollout of %s, rolled for the same change of %s, failed; not rolling until it recovers or %s changes again", failed, o.ref, o.ref)}
			return r
		}
	}
	if h := c.waveHold(key, changed, now); h.reason != "" {
		r.hold = h
		return r
	}
	if wait := c.flaps.wait(key); wait > 0 {
		r.hold = hold{reason: holdThrottled, wait: wait, message: fmt.Sprintf(
			"rolled %d times within %v (--max-rolls-per-workload); rolling once more, to the content current then, in %v",
			c.opts.MaxRollsPerWorkload.N, c.opts.MaxRollsPerWorkload.Window, wait.Round(time.Millisecond))}
		return r
	}
	if c.opts.MaxInflightRollouts > 0 && !c.inflight.reserve(key, w.meta.GetGeneration(), c.opts.MaxInflightRollouts) {
		r.hold = hold{reason: holdInflight, wait: policyRecheck, message: fmt.Sprintf(
			"%d rollouts are incomplete, the most --max-inflight-rollouts allows", c.opts.MaxInflightRollouts)}
		return r
	}
	if wait := c.pacer.wait(key); wait > 0 {
		c.inflight.release(key)
		r.hold = hold{reason: holdPaced, wait: wait, message: fmt.Sprintf(
			"rolls are spaced to %v per second (--max-rollouts-per-second); rolling in %v", c.opts.MaxRolloutsPerSecond, wait.Round(time.Millisecond))}
	}
	return r
}

// namespaceAnnotations returns the annotations of a cached Namespace, or
// nil.
func (c *Controller) namespaceAnnotations(name string) map[string]string {
	ns, err := c.namespaces.Get(name)
	if err != nil {
		return nil
	}
	return ns.Annotations
}

// RolloutState returns the state of a workload's current rollout.
func (c *Controller) rolloutState(w workload, now time.Time) plan.RolloutState {
	var started time.Time
	if rec, err := plan.ParseRolloutRecord(w.meta.GetAnnotations()[plan.AnnotationRollout]); err == nil {
		started = rec.Started
	}
	return plan.CalculateRolloutState(w.status, started, now, c.opts.RolloutTimeout)
}

// changedObjects returns the consumed objects whose change the planned
// roll carries, with the change's ID and the object's annotations.
func (c *Controller) changedObjects(namespace string, p plan.Plan, current map[plan.ConfigRef]map[string]string) []changedObject {
	byID := make(map[string]plan.ConfigRef, len(p.Consumed))
	for _, u := range p.Consumed {
		byID[plan.EntryID(u)] = u.Ref
	}
	var out []changedObject
	for _, id := range p.Decision.Changed {
		ref := byID[id]
		if slices.ContainsFunc(out, func(o changedObject) bool { return o.ref == ref }) {
			continue
		}
		o := changedObject{ref: ref, change: plan.CalculateChangeID(c.opts.HashKey, ref, current[ref])}
		if obj, ok := c.configObject(namespace, ref); ok {
			o.annotations = obj.GetAnnotations()
		}
		out = append(out, o)
	}
	return out
}

// pauseHold holds a roll while the workload, its Namespace (whose
// annotations are namespace) or a changed object is paused. A value other
// than "true" or "false" holds too, as malformed.
func pauseHold(w workload, namespace map[string]string, changed []changedObject) hold {
	check := func(annotations map[string]string, what string) hold {
		switch v, ok := annotations[plan.AnnotationPaused]; {
		case !ok || v == "false":
			return hold{}
		case v == "true":
			return hold{reason: holdPaused, message: what + " is paused (" + plan.AnnotationPaused + "); rolling once it is not"}
		default:
			return hold{reason: holdInvalid, message: fmt.Sprintf("%s has %s=%q; only \"true\" or \"false\" are valid; not rolling until it is fixed", what, plan.AnnotationPaused, v)}
		}
	}
	if h := check(w.meta.GetAnnotations(), "the workload"); h.reason != "" {
		return h
	}
	if h := check(namespace, "its namespace"); h.reason != "" {
		return h
	}
	for _, o := range changed {
		if h := check(o.annotations, o.ref.String()); h.reason != "" {
			return h
		}
	}
	return hold{}
}

// failedConsumer finds a consumer of o, other than key, that reroll rolled
// for the same change and whose rollout failed after a complete one.
func (c *Controller) failedConsumer(key workloadKey, o changedObject, now time.Time) (workloadKey, bool) {
	for _, m := range c.consumersOf(key.name.Namespace, o.ref) {
		if m.key == key {
			continue
		}
		rec, err := plan.ParseRolloutRecord(m.w.meta.GetAnnotations()[plan.AnnotationRollout])
		if err == nil && rec.FromComplete && rec.RolledFor(o.change) &&
			plan.CalculateRolloutState(m.w.status, rec.Started, now, c.opts.RolloutTimeout) == plan.RolloutFailed {
			return m.key, true
		}
	}
	return workloadKey{}, false
}

// waveHold holds a roll whose changes all roll in waves and none of whose
// waves has come. A workload that several changes roll belongs to the
// earliest wave any of them gives it.
func (c *Controller) waveHold(key workloadKey, changed []changedObject, now time.Time) hold {
	var waiting []string
	for _, o := range changed {
		steps, err := plan.WavesOf(o.annotations, c.opts.Waves)
		if err != nil {
			return hold{reason: holdInvalid, message: fmt.Sprintf("%s has %s: %v; not rolling until it is fixed", o.ref, plan.AnnotationWaves, err)}
		}
		if steps == nil {
			return hold{} // this change rolls every consumer at once
		}
		members, err := c.waveMembers(key.name.Namespace, o)
		if err != nil {
			return hold{reason: holdInvalid, message: err.Error() + "; not rolling until it is fixed"}
		}
		pending, ok := calculateWaveTurn(members, key, plan.CalculateWaveSizes(steps, len(members)), func(m waveMember) bool {
			return m.rolled && plan.CalculateRolloutState(m.status, m.started, now, c.opts.RolloutTimeout) == plan.RolloutComplete
		})
		if ok {
			return hold{}
		}
		waiting = append(waiting, fmt.Sprintf("%d of the earlier wave(s) of %s", pending, o.ref))
	}
	if len(waiting) == 0 {
		return hold{}
	}
	return hold{reason: holdWave, wait: policyRecheck, message: "waiting for " + joinAnd(waiting) + " to roll and complete"}
}

// waveMember is a consumer a change rolls, in wave order.
type waveMember struct {
	key      workloadKey
	priority int
	// rolled: reroll rolled it for the change; started is when.
	rolled  bool
	started time.Time
	status  plan.RolloutStatus
}

// waveMembers returns the consumers change o rolls, or has rolled, in wave
// order: reroll.dev/wave-priority (lower first), then namespace/name. A
// consumer is a member when reroll rolled it for the change, or when the
// content of o it consumes differs from what it recorded.
func (c *Controller) waveMembers(namespace string, o changedObject) ([]waveMember, error) {
	digests := c.currentDigests(namespace, o.ref)
	var members []waveMember
	for _, m := range c.consumersOf(namespace, o.ref) {
		priority, err := plan.ParseWavePriority(m.w.meta.GetAnnotations())
		if err != nil {
			return nil, fmt.Errorf("%s: %v", m.key, err)
		}
		member := waveMember{key: m.key, priority: priority, status: m.w.status}
		if rec, err := plan.ParseRolloutRecord(m.w.meta.GetAnnotations()[plan.AnnotationRollout]); err == nil && rec.RolledFor(o.change) {
			member.rolled, member.started = true, rec.Started
		} else if !c.consumesChange(m, o.ref, digests) {
			continue
		}
		members = append(members, member)
	}
	slices.SortFunc(members, func(a, b waveMember) int {
		return cmp.Or(cmp.Compare(a.priority, b.priority), cmp.Compare(a.key.name.Namespace, b.key.name.Namespace),
			cmp.Compare(a.key.name.Name, b.key.name.Name), cmp.Compare(a.key.groupKind, b.key.groupKind))
	})
	return members, nil
}

// consumesChange reports whether the content of ref that m consumes
// differs from what m recorded.
func (c *Controller) consumesChange(m consumer, ref plan.ConfigRef, digests map[string]string) bool {
	recorded, err := plan.ParseConsumedState(m.w.meta.GetAnnotations()[plan.AnnotationConsumed])
	if err != nil || recorded.KeyID != c.opts.HashKey.ID() {
		return false // adopting or re-baselining rolls nothing
	}
	for _, u := range plan.CalculateConsumption(m.w.references, m.o) {
		if u.Ref != ref {
			continue
		}
		fp, _ := plan.CalculateFingerprint(c.opts.HashKey, u, digests)
		old, ok := recorded.Entries[plan.EntryID(u)]
		return ok && old != fp
	}
	return false
}

// calculateWaveTurn reports whether key's wave has come: every member of
// the earlier waves is done. When not, it returns how many are not.
func calculateWaveTurn(members []waveMember, key workloadKey, sizes []int, done func(waveMember) bool) (pending int, ok bool) {
	pos := slices.IndexFunc(members, func(m waveMember) bool { return m.key == key })
	if pos < 0 {
		return 0, true // not a member: the change does not roll it
	}
	wave := plan.WaveOf(pos, sizes)
	if wave == 0 {
		return 0, true
	}
	for _, m := range members[:sizes[wave-1]] {
		if !done(m) {
			pending++
		}
	}
	return pending, pending == 0
}

// joinAnd joins items as "a, b and c".
func joinAnd(items []string) string {
	if len(items) <= 1 {
		return fmt.Sprint(items[0])
	}
	out := ""
	for i, s := range items[:len(items)-1] {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out + " and " + items[len(items)-1]
}
