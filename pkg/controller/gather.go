package controller

import (
	"time"

	"github.com/reroll/reroll/pkg/plan"
)

// The gathering half of the rollout-safety policies: everything the rules
// (plan.Rules) judge a planned roll on, read once from the caches and from
// the pacing and flap memory into one plan.PolicyInput. The rules then
// decide without reading anything else.

// gatherPolicyInput returns the facts the rules judge a planned roll p of
// key on, and the rollout record the roll writes if they let it go. current
// holds the digests p was planned on.
func (c *Controller) gatherPolicyInput(key workloadKey, w workload, p plan.Plan, current map[plan.ConfigRef]map[string]string) (plan.PolicyInput, plan.RolloutRecord) {
	now := c.opts.Clock.Now()
	in := plan.PolicyInput{
		Now:                  now,
		Workload:             key.id(),
		WorkloadAnnotations:  w.meta.GetAnnotations(),
		NamespaceAnnotations: c.namespaceAnnotations(key.name.Namespace),
		Changed:              c.inputs.changedObjects(key.name.Namespace, p, current),
		RollLimit:            c.opts.MaxRollsPerWorkload,
		RecentRolls:          c.flaps.history(key),
		MaxInflight:          c.opts.MaxInflightRollouts,
		MaxRolloutsPerSecond: c.opts.MaxRolloutsPerSecond,
		PaceSlot:             c.slots.pacer.peek(key),
	}
	in.Inflight, in.SelfInflight = c.slots.inflight.countWith(key)
	in.Windows = plan.WindowsOf(in, c.opts.RolloutWindow)
	for i := range in.Changed {
		c.gatherChange(key.name.Namespace, &in.Changed[i], now)
	}
	return in, plan.RolloutRecordFor(in, c.rolloutState(w, now))
}

// gatherChange fills in the waves of a changed object o and the facts of
// its consumers: their rollout records and states, and, when o has waves,
// their wave priorities and whether the change rolls them (the only facts
// that cost a hash each).
func (c *Controller) gatherChange(namespace string, o *plan.ChangedObject, now time.Time) {
	o.Waves, o.WavesError = plan.WavesOf(o.Annotations, c.opts.Waves)
	withWaves := o.WavesError == nil && o.Waves != nil
	var digests map[string]string
	if obj, ok := c.inputs.configObject(namespace, o.Ref); ok && withWaves {
		digests = plan.CachedDigests(obj)
	}
	for _, m := range c.consumersOf(namespace, o.Ref) {
		annotations := m.w.meta.GetAnnotations()
		f := plan.ConsumerFacts{ID: m.key.id()}
		var started time.Time
		if rec, err := plan.ParseRolloutRecord(annotations[plan.AnnotationRollout]); err == nil {
			f.Record, started = &rec, rec.Started
		}
		f.State = plan.CalculateRolloutState(m.w.status, started, now, c.opts.RolloutTimeout)
		if withWaves {
			f.Priority, f.PriorityError = plan.ParseWavePriority(annotations)
			f.ConsumesChange = plan.ConsumesChange(c.opts.HashKey, annotations[plan.AnnotationConsumed],
				plan.CalculateConsumption(m.w.references, m.o), o.Ref, digests)
		}
		o.Consumers = append(o.Consumers, f)
	}
}

// namespaceAnnotations returns the annotations of a cached Namespace, or
// nil.
func (c *Controller) namespaceAnnotations(name string) map[string]string {
	ns, ok := c.namespace(name)
	if !ok {
		return nil
	}
	return ns.Annotations
}

// rolloutState returns the state of a workload's current rollout, timed
// from the roll reroll recorded on it, if any.
func (c *Controller) rolloutState(w workload, now time.Time) plan.RolloutState {
	var started time.Time
	if rec, err := plan.ParseRolloutRecord(w.meta.GetAnnotations()[plan.AnnotationRollout]); err == nil {
		started = rec.Started
	}
	return plan.CalculateRolloutState(w.status, started, now, c.opts.RolloutTimeout)
}
