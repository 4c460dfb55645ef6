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

// observeRollout records the rollout state of a workload whose cached
// object changed from oldObj (nil when added) to newObj, and wakes the
// rolls that wait on it: those held by the in-flight cap when it completes,
// and those held by a halt or a wave of a change reroll rolled it for when
// its state changes.
func (c *Controller) observeRollout(ctx context.Context, a workloadAdapter, oldObj, newObj any) {
	w, err := viewWorkload(a, newObj)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Unexpected object in workload informer", "kind", a.groupKind())
		return
	}
	key := workloadKey{groupKind: a.groupKind(), name: cache.MetaObjectToName(w.meta)}
	if !c.view.wantsSync(w) {
		c.memory.slots.gone(key)
		return
	}
	now := c.opts.Clock.Now()
	state := c.view.rolloutState(w, now)
	c.memory.slots.observe(key, state != plan.RolloutComplete, w.meta.GetGeneration())
	if oldObj == nil {
		return
	}
	old, err := viewWorkload(a, oldObj)
	if err != nil || c.view.rolloutState(old, now) == state {
		return
	}
	rec, err := plan.ParseRolloutRecord(w.meta.GetAnnotations()[plan.AnnotationRollout])
	if err != nil {
		return // reroll did not start this rollout: no policy waits on it
	}
	for _, change := range rec.Changes {
		c.wakeConsumers(w.meta.GetNamespace(), plan.RefOfChange(change))
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
