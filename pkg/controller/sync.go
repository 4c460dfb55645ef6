package controller

// One sync of one workload, in three steps, in the style of the kube
// Deployment controller:
//
//  1. decide (decide.go): the plan (pkg/plan), decided from the caches
//     alone, and for a roll the rollout-safety rules' judgement on facts
//     the gatherer reads (gather.go); then clearRoll makes the change it
//     carries durable and rollSlots.claim (inflight.go) takes its in-flight
//     place and pacing slot;
//  2. apply (apply.go): the one write, a patch of reroll's annotations (or,
//     for a Job, its re-creation), or under --dry-run nothing but
//     remembering what would have been written;
//  3. report (reporter.go): Events, metrics and a log line.
//
// The sync reads only from the caches and makes at most one write. It
// returns an error only when a retry can help; bad input is reported as a
// Warning Event and a log line, and the workload waits for a fix.

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// syncWorkload brings one workload's recorded state up to date with what it
// consumes, rolling it when consumed content changed.
//
// Long: the sync reads top to bottom as its steps (see above), each a
// call, with the checks between them that end it early.
func (c *Controller) syncWorkload(ctx context.Context, key workloadKey) error {
	a, ok := c.view.kinds.get(key.groupKind)
	if !ok {
		return nil // not a kind this controller watches
	}
	if !c.view.namespaceSelected(key.name.Namespace) {
		// Outside --namespace-selector: never synced. Its Namespace's
		// events enqueue it again if it comes to match.
		c.memory.forget(key)
		return nil
	}
	if c.deferToBurst(ctx, key) {
		return nil
	}
	// Taken before the caches are read, like the burst: a change that
	// arrives later stays pending for the next sync.
	seq, before := c.memory.changes.snapshot(key)
	w, err := getWorkload(a, key.name)
	if apierrors.IsNotFound(err) {
		c.memory.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("kind", key.groupKind, "workload", klog.KObj(w.meta))
	ctx = klog.NewContext(ctx, logger)
	if c.memory.writes.cacheBehindOwnWrite(key, w.meta.GetResourceVersion()) {
		// The informer delivers reroll's last write soon and enqueues the
		// key again; deciding now on the older object could write twice.
		logger.V(4).Info("Cache is behind reroll's last write; waiting for it")
		return nil
	}
	c.judgeProgress(key, w)

	d := decision{key: key, w: w, before: before, now: c.opts.Clock.Now(), mem: c.memory}
	if c.opts.DryRun {
		// What reroll would have written stands in for the consumed
		// annotation, so a dry run reports rolls after its first (would-be)
		// baseline.
		if v, ok := c.memory.dryRunStates.get(key); ok {
			d.recorded = &v
		}
	}
	v := c.gatherer.decide(d)
	if !v.plan.Blocked && v.plan.Decision.Action == plan.ActionRoll {
		if held, err := c.clearRoll(ctx, key, w, &v); err != nil || held {
			return err
		}
	}
	c.memory.slots.pacer.release(key)
	c.reporter.releaseHold(ctx, key)
	outcome, err := c.apply(ctx, a, key, w, v)
	if err != nil || outcome.writeSkipped() {
		c.memory.slots.release(key)
	}
	if err != nil {
		return err
	}
	if c.reporter.report(ctx, key, w, v.plan, outcome, v.current) {
		c.memory.forget(key)
	}
	c.memory.changes.settle(key, seq, before, v.plan.Decision.Action == plan.ActionRoll)
	if len(before) > 0 {
		c.pending.settled()
	}
	return nil
}

// clearRoll readies a planned roll that decide judged: the change it is for
// is made durable for the consumers not adopted yet before any consumer
// rolls (pendingstore.go); a roll the rules let go claims its in-flight
// place and pacing slot, which can still hold it (claim makes the rules'
// judgement of the cap and the pacing atomic against the other workers).
// It reports whether the roll is held, and reports the hold.
func (c *Controller) clearRoll(ctx context.Context, key workloadKey, w workload, v *verdict) (held bool, err error) {
	if err := c.pending.flush(ctx); err != nil {
		return false, err
	}
	if v.hold.Reason == "" || v.hold.Reason == plan.HoldPaced {
		// A paced hold claims too: that reserves the workload's own slot.
		v.hold = c.memory.slots.claim(key, w.meta.GetGeneration())
	}
	if v.hold.Reason == "" {
		return false, nil
	}
	c.reporter.reportHold(ctx, key, w, v.plan, v.hold)
	if v.hold.Wait > 0 {
		c.queue.AddAfter(key, v.hold.Wait)
	}
	return true, nil
}

// deferToBurst reports whether a sync of key must wait for the burst of
// config changes in progress, and requeues it for the burst's end. A key
// queued early by something else (reroll's own write, a resync, a retry)
// would otherwise roll half the burst now and the rest a second time; the
// burst rolls once, at its end, to the content current then (see burst.go).
func (c *Controller) deferToBurst(ctx context.Context, key workloadKey) bool {
	wait := c.memory.bursts.take(key)
	if wait <= 0 {
		return false
	}
	klog.FromContext(ctx).V(4).Info("Burst of config changes in progress; syncing at its end", "workload", key, "after", wait)
	c.queue.AddAfter(key, wait)
	return true
}
