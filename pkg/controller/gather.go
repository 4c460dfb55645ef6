package controller

import (
	"time"

	"github.com/reroll/reroll/pkg/plan"
)

// The gathering half of the rollout-safety policies: everything the rules
// (plan.Rules) judge a planned roll on, read once from the caches and from
// what reroll remembers into one plan.PolicyInput. The rules then decide
// without reading anything else.

// gatherer reads the facts of planned rolls from a view. The controller's
// sync and the plugin's Inspector each have one, over their own view, and
// gather with the same code.
type gatherer struct {
	view *cacheView
	// memo remembers the facts of the consumers of the changes judged last
	// (factsmemo.go).
	memo *consumerFactsMemo
	// judge judges the consumers' rollouts, with their bake (judge.go).
	judge *rolloutJudge
}

// rollMemory is what the rules read beyond the cluster's state: what reroll
// remembers of its own recent rolls. The controller remembers them; the
// plugin, which does not, counts the rollouts in flight from its snapshot
// and knows no pacing or flap history.
type rollMemory interface {
	// recentRolls returns when key rolled within the flap window, oldest
	// first.
	recentRolls(key workloadKey) []time.Time
	// paceSlot returns the earliest time pacing lets key roll; zero without
	// pacing.
	paceSlot(key workloadKey) time.Time
	// inflight returns how many rollouts are in flight, and whether key's
	// is one of them.
	inflight(key workloadKey) (count int, self bool)
}

// gather returns the facts the rules judge a planned roll p of key on, and
// the rollout record the roll writes if they let it go. current holds the
// digests p was planned on.
func (g *gatherer) gather(key workloadKey, w workload, p plan.Plan, current map[plan.ConfigRef]map[string]string, now time.Time, mem rollMemory) (plan.PolicyInput, plan.RolloutRecord) {
	d := g.view.decisions
	in := plan.PolicyInput{
		Now:                  now,
		Workload:             key.id(),
		WorkloadAnnotations:  w.meta.GetAnnotations(),
		NamespaceAnnotations: g.view.namespaceAnnotations(key.name.Namespace),
		Changed:              g.view.changedObjects(key.name.Namespace, p, current),
		RollLimit:            d.MaxRollsPerWorkload,
		RecentRolls:          mem.recentRolls(key),
		MaxInflight:          d.MaxInflightRollouts,
		MaxRolloutsPerSecond: d.MaxRolloutsPerSecond,
		PaceSlot:             mem.paceSlot(key),
	}
	in.Inflight, in.SelfInflight = mem.inflight(key)
	in.Windows = plan.WindowsOf(in, d.RolloutWindow)
	for i := range in.Changed {
		g.gatherChange(key.name.Namespace, &in.Changed[i], now)
	}
	return in, plan.RolloutRecordFor(in, g.view.rolloutState(w, now))
}

// gatherChange fills in the waves of a changed object o and the facts of
// its consumers: their rollout records and states, and, when o has waves,
// their wave priorities and whether the change rolls them (the only facts
// that cost a hash each). Without waves, only the halt reads consumers,
// and only those whose rollout can fail (canFailIndex), so only those are
// read. The facts of a consumer whose object has not changed since an
// earlier sync read them for the same change come from g.memo (see
// factsmemo.go). Either way a fan-out of one change to n workloads no
// longer reads all n consumers in each of its n syncs.
func (g *gatherer) gatherChange(namespace string, o *plan.ChangedObject, now time.Time) {
	o.Waves, o.WavesError = plan.WavesOf(o.Annotations, g.view.decisions.Waves)
	_, o.BakeError = plan.BakeTimeOf(nil, o.Annotations, g.view.decisions.BakeTime)
	k := changeKey{namespace: namespace, ref: o.Ref, change: o.Change, withWaves: o.WavesError == nil && o.Waves != nil}
	var digests map[string]string
	if obj, ok := g.view.lookupConfig(namespace, o.Ref); ok {
		k.uid, k.resourceVersion = obj.GetUID(), obj.GetResourceVersion()
		if k.withWaves {
			digests = plan.CachedDigests(obj)
		}
	}
	index := consumersIndex
	if !k.withWaves {
		index = canFailIndex
	}
	memo := g.memo.forChange(k)
	indexed := 0
	for a, cw := range g.view.kinds.indexed(index, configIndexValue(namespace, o.Ref)) {
		indexed++
		m, ok := g.consumerFactsOf(a, cw, memo, k, digests, o.Annotations)
		if !ok || !m.optedIn {
			continue
		}
		f := m.facts
		j := g.judge.judge(keyOf(f.ID), m.rolled, m.bake, now)
		f.State, f.Until, f.Why = j.State, j.Until, j.Why
		o.Consumers = append(o.Consumers, f)
	}
	memo.trim(indexed)
}

// consumerFactsOf returns the facts of cw, a workload of a's kind indexed
// as a consumer of change k, as remembered in memo for its object's
// resourceVersion, or read afresh and remembered. ok is false for an
// object that cannot be viewed, which consumersOf skips too.
func (g *gatherer) consumerFactsOf(a workloadAdapter, cw *cachedWorkload, memo *changeFacts, k changeKey, digests, objectAnnotations map[string]string) (m consumerMemo, ok bool) {
	key := keyOfCached(a, cw)
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
	w, err := viewWorkload(a, cw)
	if err != nil {
		return consumerMemo{}, false
	}
	m = g.calculateConsumerFacts(key, w, k, digests, objectAnnotations)
	if memoable {
		memo.put(key, m)
	}
	return m, true
}

// calculateConsumerFacts reads the facts of workload w, named key, as a
// consumer of change k, whose object has digests and objectAnnotations,
// from its cached object: whether it is opted in (as consumersOf asks), its
// rollout record and bake time, and with waves its priority and whether
// the change rolls it. Its rollout state is left to the caller: it depends
// on the time.
func (g *gatherer) calculateConsumerFacts(key workloadKey, w workload, k changeKey, digests, objectAnnotations map[string]string) consumerMemo {
	m := consumerMemo{uid: w.meta.GetUID(), resourceVersion: w.meta.GetResourceVersion(), rolled: rolledOf(w)}
	m.bake, m.facts.BakeError = g.judge.bakeTime(w, objectAnnotations)
	o, _, err := g.view.optInOf(w)
	if err != nil || !o.Enabled() {
		return m
	}
	m.optedIn = true
	annotations := w.meta.GetAnnotations()
	m.facts.ID = key.id()
	if rec, err := plan.ParseRolloutRecord(annotations[plan.AnnotationRollout]); err == nil {
		m.facts.Record = &rec
	}
	if k.withWaves {
		m.facts.Priority, m.facts.PriorityError = plan.ParseWavePriority(annotations)
		m.facts.ConsumesChange = plan.ConsumesChange(g.view.hashKey, annotations[plan.AnnotationConsumed],
			plan.CalculateConsumption(w.references, o), k.ref, digests)
	}
	return m
}
