package controller

import (
	"slices"
	"time"

	"k8s.io/client-go/tools/cache"

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
// that cost a hash each). Without waves, only the halt reads consumers,
// and only those whose rollout can fail (canFailIndex), so only those are
// read. The facts of a consumer whose object has not changed since an
// earlier sync read them for the same change come from c.consumerFacts
// (see factsmemo.go). Either way a fan-out of one change to n workloads
// no longer reads all n consumers in each of its n syncs.
func (c *Controller) gatherChange(namespace string, o *plan.ChangedObject, now time.Time) {
	o.Waves, o.WavesError = plan.WavesOf(o.Annotations, c.opts.Waves)
	k := changeKey{namespace: namespace, ref: o.Ref, change: o.Change, withWaves: o.WavesError == nil && o.Waves != nil}
	var digests map[string]string
	if obj, ok := c.inputs.configObject(namespace, o.Ref); ok {
		k.uid, k.resourceVersion = obj.GetUID(), obj.GetResourceVersion()
		if k.withWaves {
			digests = plan.CachedDigests(obj)
		}
	}
	index := consumersIndex
	if !k.withWaves {
		index = canFailIndex
	}
	memo := c.consumerFacts.forChange(k)
	indexed := 0
	for _, a := range c.adapterList() {
		// consumersOf's walk, over index, but the memo lets it skip the
		// opt-in of every consumer it remembers.
		objs, err := a.informer().GetIndexer().ByIndex(index, configIndexValue(namespace, o.Ref))
		if err != nil {
			continue
		}
		indexed += len(objs)
		o.Consumers = slices.Grow(o.Consumers, len(objs))
		for _, obj := range objs {
			m, ok := c.consumerFactsOf(a, obj, memo, k, digests)
			if !ok || !m.consumer {
				continue
			}
			f := m.facts
			f.State = plan.CalculateRolloutState(m.status, m.started, now, c.opts.RolloutTimeout)
			o.Consumers = append(o.Consumers, f)
		}
	}
	memo.trim(indexed)
}

// consumerFactsOf returns the facts of obj, a workload of a's kind indexed
// as a consumer of change k, as remembered in memo for its object's
// resourceVersion, or read afresh and remembered. ok is false for an
// object that is not a cached workload, which consumersOf skips too.
func (c *Controller) consumerFactsOf(a workloadAdapter, obj any, memo *changeFacts, k changeKey, digests map[string]string) (m consumerMemo, ok bool) {
	cw, ok := obj.(*cachedWorkload)
	if !ok {
		return consumerMemo{}, false
	}
	key := workloadKey{groupKind: a.groupKind(), name: cache.MetaObjectToName(cw)}
	// A resourceVersion names one version of an object, so facts read from
	// it hold as long as it is cached; but not for one that runs another
	// workload's template (spec.workloadRef), whose references change with
	// that other object.
	memoable := cw.ResourceVersion != "" && cw.WorkloadRef == ""
	if memoable {
		if m, ok := memo.get(key, cw.UID, cw.ResourceVersion); ok {
			return m, true
		}
	}
	w, err := viewWorkload(a, obj)
	if err != nil {
		return consumerMemo{}, false
	}
	m = c.calculateConsumerFacts(key, w, k, digests)
	if memoable {
		memo.put(key, m)
	}
	return m, true
}

// calculateConsumerFacts reads the facts of workload w, named key, as a
// consumer of change k, whose object has digests, from its cached object:
// whether it is opted in (as consumersOf asks), its rollout record, and
// with waves its priority and whether the change rolls it. Its rollout
// state is left to the caller: it depends on the time.
func (c *Controller) calculateConsumerFacts(key workloadKey, w workload, k changeKey, digests map[string]string) consumerMemo {
	m := consumerMemo{uid: w.meta.GetUID(), resourceVersion: w.meta.GetResourceVersion(), status: w.status}
	o, _, err := c.inputs.optInOf(w)
	if err != nil || !o.Enabled() {
		return m
	}
	m.consumer = true
	annotations := w.meta.GetAnnotations()
	m.facts.ID = key.id()
	if rec, err := plan.ParseRolloutRecord(annotations[plan.AnnotationRollout]); err == nil {
		m.facts.Record, m.started = &rec, rec.Started
	}
	if k.withWaves {
		m.facts.Priority, m.facts.PriorityError = plan.ParseWavePriority(annotations)
		m.facts.ConsumesChange = plan.ConsumesChange(c.opts.HashKey, annotations[plan.AnnotationConsumed],
			plan.CalculateConsumption(w.references, o), k.ref, digests)
	}
	return m
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
