package controller

import (
	"context"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// The informers' side of the rollout-safety policies: every workload event,
// status updates included, keeps the in-flight set current, and wakes the
// held rolls waiting on a rollout that changed state. Nothing else is
// enqueued by a status update, the most frequent event of all.

// observeRollout judges the rollout of a workload whose cached object
// changed from oldObj (nil when added) to newObj (see judgeProgress).
func (c *Controller) observeRollout(ctx context.Context, a workloadAdapter, oldObj, newObj any) {
	w, err := viewWorkload(a, newObj)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Unexpected object in workload informer", "kind", a.groupKind())
		return
	}
	c.judgeProgress(workloadKey{groupKind: a.groupKind(), name: cache.MetaObjectToName(w.meta)}, w)
}

// judgeProgress judges the rollout of workload key, w, now, with its bake
// (judge.go), keeps the in-flight set current, and wakes the rolls that
// wait on it: those held by the in-flight cap when it completes, and those
// held by a halt or a wave of a change reroll rolled it for when its state
// changed. A rollout that bakes, or that failed inside its bake, is judged
// again when that ends: no event says so. The handlers call it on every
// status update, the pods of a baking workload on theirs, and every sync.
func (c *Controller) judgeProgress(key workloadKey, w workload) {
	if !c.view.wantsSync(w) {
		c.memory.slots.gone(key)
		return
	}
	now := c.opts.Clock.Now()
	r := rolledOf(w)
	judge := c.gatherer.judge
	judge.observe(key, r, now)
	var objects []map[string]string
	var changes []plan.ChangeID
	if rec, err := plan.ParseRolloutRecord(w.meta.GetAnnotations()[plan.AnnotationRollout]); err == nil {
		changes = rec.Changes
		for _, change := range changes {
			if obj, ok := c.view.lookupConfig(key.name.Namespace, plan.RefOfChange(change)); ok {
				objects = append(objects, obj.GetAnnotations())
			}
		}
	}
	bake, _ := judge.bakeTime(w, objects...)
	j := judge.judge(key, r, bake, now)
	c.memory.slots.observe(key, j.State != plan.RolloutComplete, w.meta.GetGeneration())
	if wait := j.Until.Sub(now); wait > 0 {
		c.queue.AddAfter(key, wait)
	}
	was, had := c.memory.judged.swap(key, j.State)
	if had && was == j.State {
		return
	}
	if j.State == plan.RolloutFailed && !j.Until.IsZero() {
		c.reporter.metrics.bakeFailures.WithLabelValues(key.groupKind).Inc()
	}
	for _, change := range changes {
		c.wakeConsumers(key.name.Namespace, plan.RefOfChange(change))
	}
}

// wakeConsumers syncs, at once, the consumers of ref held by a halt or a
// wave: a rollout they wait on changed state.
func (c *Controller) wakeConsumers(namespace string, ref plan.ConfigRef) {
	held := c.memory.holds.heldFor(plan.HoldHalted, plan.HoldWave)
	if len(held) == 0 {
		return
	}
	for _, m := range c.view.consumersOf(namespace, ref) {
		for _, k := range held {
			if k == m.key {
				c.queue.Add(k)
			}
		}
	}
}
