package controller

// One sync of one workload, in three steps, in the style of the kube
// Deployment controller:
//
//  1. plan (pkg/plan): what to do and why, decided from the caches alone;
//     then, for a roll, the rollout-safety rules (plan.Rules, on facts
//     gather.go reads) may hold it, and rollSlots.claim (inflight.go) takes its
//     in-flight place and pacing slot;
//  2. apply (apply.go): the one write, a patch of reroll's annotations, or under
//     --dry-run nothing but remembering what would have been written;
//  3. report (report.go): Events, metrics and a log line.
//
// The sync reads only from the caches and makes at most one write. It
// returns an error only when a retry can help; bad input is reported as a
// Warning Event and a log line, and the workload waits for a fix.

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// syncWorkload brings one workload's recorded state up to date with what it
// consumes, rolling it when consumed content changed.
func (c *Controller) syncWorkload(ctx context.Context, key workloadKey) error {
	a, ok := c.adapterFor(key.groupKind)
	if !ok {
		return nil // not a kind this controller watches
	}
	if !c.namespaceSelected(key.name.Namespace) {
		// Outside --namespace-selector: never synced. Its Namespace's
		// events enqueue it again if it comes to match.
		c.forget(key)
		return nil
	}
	if c.deferToBurst(ctx, key) {
		return nil
	}
	// Taken before the caches are read, like the burst: a change that
	// arrives later stays pending for the next sync.
	seq, before := c.changes.snapshot(key)
	w, err := getWorkload(a, key.name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("kind", key.groupKind, "workload", klog.KObj(w.meta))
	ctx = klog.NewContext(ctx, logger)
	if c.writes.cacheBehindOwnWrite(key, w.meta.GetResourceVersion()) {
		// The informer delivers reroll's last write soon and enqueues the
		// key again; deciding now on the older object could write twice.
		logger.V(4).Info("Cache is behind reroll's last write; waiting for it")
		return nil
	}

	current := map[plan.ConfigRef]map[string]string{}
	p := c.planSync(c.planInput(key, w, current), key.name.Namespace, before)
	var record *plan.RolloutRecord
	if !p.Blocked && p.Decision.Action == plan.ActionRoll {
		if record, err = c.clearRoll(ctx, key, w, p, current); err != nil || record == nil {
			return err
		}
	}
	c.releaseHold(ctx, key)
	outcome, err := c.apply(ctx, a, key, w, p, record)
	if err != nil || outcome.writeSkipped() {
		c.slots.release(key)
	}
	if err != nil {
		return err
	}
	c.report(ctx, key, w, p, outcome, current)
	c.changes.settle(key, seq, before, p.Decision.Action == plan.ActionRoll)
	if len(before) > 0 {
		c.pending.settled()
	}
	return nil
}

// clearRoll readies a planned roll: the change it is for is made durable
// for the consumers not adopted yet before any consumer rolls
// (pendingstore.go), then the rules judge it. It returns the record the
// roll writes, or nil when the roll is held, which it reports.
func (c *Controller) clearRoll(ctx context.Context, key workloadKey, w workload, p plan.Plan, current map[plan.ConfigRef]map[string]string) (*plan.RolloutRecord, error) {
	if err := c.pending.flush(ctx); err != nil {
		return nil, err
	}
	record, h := c.judgeRoll(key, w, p, current)
	if h.Reason != "" {
		c.reportHold(ctx, key, w, p, h)
		return nil, nil
	}
	return &record, nil
}

// judgeRoll decides whether a planned roll goes ahead now: the rules judge
// the facts gathered once (see gather.go), and a roll they let go claims
// its in-flight place and pacing slot (see rollSlots.claim), which can still hold
// it. Only rolls are judged: adopting, re-baselining and recording
// references change no pod. It returns the record the roll writes.
func (c *Controller) judgeRoll(key workloadKey, w workload, p plan.Plan, current map[plan.ConfigRef]map[string]string) (plan.RolloutRecord, plan.Hold) {
	in, record := c.gatherPolicyInput(key, w, p, current)
	h := plan.Judge(in, plan.Rules())
	switch h.Reason {
	case plan.HoldPaused, plan.HoldWindow, plan.HoldHalted, plan.HoldWave:
		for _, o := range in.Changed {
			_, digest, _ := strings.Cut(string(o.Change), ":")
			h.Message += fmt.Sprintf("; to let this change through, set %s=%s on %s", plan.AnnotationRelease, digest, o.Ref)
		}
	}
	if h.Reason == "" || h.Reason == plan.HoldPaced {
		// A paced hold claims too: that reserves the workload's own slot.
		h = c.slots.claim(key, w.meta.GetGeneration())
	}
	return record, h
}

// deferToBurst reports whether a sync of key must wait for the burst of
// config changes in progress, and requeues it for the burst's end. A key
// queued early by something else (reroll's own write, a resync, a retry)
// would otherwise roll half the burst now and the rest a second time; the
// burst rolls once, at its end, to the content current then (see burst.go).
func (c *Controller) deferToBurst(ctx context.Context, key workloadKey) bool {
	wait := c.bursts.take(key)
	if wait <= 0 {
		return false
	}
	klog.FromContext(ctx).V(4).Info("Burst of config changes in progress; syncing at its end", "workload", key, "after", wait)
	c.queue.AddAfter(key, wait)
	return true
}

// planSync returns a workload's plan, from the caches as usual, unless a
// consumed object changed while the workload was not adopted yet (before
// holds those objects as they were) and that plan would not roll: then it
// compares against the content before the change, and rolls when a key the
// workload consumes changed. Not only a workload still without a recorded
// state: an adoption that read the caches after the change reached them,
// but before the change's event was handled, recorded the new content as
// if the Pods ran it.
func (c *Controller) planSync(in plan.Input, namespace string, before map[plan.ConfigRef]metav1.Object) plan.Plan {
	p := plan.Compute(in, c.inputs.settings())
	if len(before) == 0 || p.Blocked || p.OptedOut {
		return p
	}
	switch p.Decision.Action {
	case plan.ActionAdopt, plan.ActionNone, plan.ActionRecord:
		if bp, ok := c.planAgainstBaseline(in, namespace, before); ok {
			return bp
		}
	}
	return p
}

// planAgainstBaseline returns the plan that takes the consumed objects in
// before, as they were before their changes, for the workload's recorded
// state. ok is true only when that plan rolls: a key the workload consumes
// changed since.
func (c *Controller) planAgainstBaseline(in plan.Input, namespace string, before map[plan.ConfigRef]metav1.Object) (p plan.Plan, ok bool) {
	s := c.inputs.settings()
	then := in
	then.HasRecorded = false
	then.Lookup = plan.NewConfigLookup(func(ref plan.ConfigRef) (metav1.Object, bool) {
		if obj, ok := before[ref]; ok {
			return obj, true
		}
		return c.inputs.configObject(namespace, ref)
	}, c.opts.ReloaderAnnotations, map[plan.ConfigRef]map[string]string{})
	baseline := plan.Compute(then, s)
	if baseline.Blocked || baseline.OptedOut {
		return plan.Plan{}, false
	}
	in.Recorded, in.HasRecorded = baseline.Desired.String(), true
	p = plan.Compute(in, s)
	if p.Blocked || p.Decision.Action != plan.ActionRoll {
		return plan.Plan{}, false
	}
	return p, true
}

// planInput gathers a workload's plan input from the caches (see
// inputBuilder.planInput). The lookup records in current the digests of
// every object it reads, for messages. Under --dry-run, what reroll would
// have written stands in for the consumed annotation, so a dry run reports
// rolls after its first (would-be) baseline.
func (c *Controller) planInput(key workloadKey, w workload, current map[plan.ConfigRef]map[string]string) plan.Input {
	in := c.inputs.planInput(w, current)
	if c.opts.DryRun {
		if v, ok := c.dryRunStates.get(key); ok {
			in.Recorded, in.HasRecorded = v, true
		}
	}
	return in
}
