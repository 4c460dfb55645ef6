package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// report tells what a sync did (see sync.go): Events, metrics and a log
// line, and updates what the controller remembers of the workload. current
// holds the digests the plan read.
func (c *Controller) report(ctx context.Context, key workloadKey, w workload, p plan.Plan, outcome applyOutcome, current map[plan.ConfigRef]map[string]string) {
	logger := klog.FromContext(ctx)
	for _, pr := range p.Problems {
		c.warn(ctx, w, pr.Reason, "%s", pr.Message)
	}
	switch {
	case p.OptedOut || outcome.result == applyGone:
		c.forget(key)
		return
	case p.Blocked:
		c.metrics.skipped.WithLabelValues(skipBlocked).Inc()
		return
	case outcome.result == applyRejected:
		c.warn(ctx, w, plan.ReasonPatchRejected, "the API server rejected reroll's patch: %v", outcome.rejection)
		return
	case outcome.result == applyNotified:
		c.lastDigests.set(key, current)
		c.metrics.skipped.WithLabelValues(skipWebhook).Inc()
		c.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonWebhookSent, "Notify", "Sent to the webhook instead of rolling: consumed content changed")
		return
	case outcome.result == applyNotLeader:
		logger.Info("No longer the leader: not writing; the next leader syncs this workload")
		return
	case p.Decision.Action == plan.ActionNone:
		c.metrics.skipped.WithLabelValues(skipUnchanged).Inc()
		c.lastDigests.set(key, current)
		return
	}
	// The note reads the digests of the previous sync: describe before
	// remembering the current ones.
	note := c.describe(key, p, current)
	c.lastDigests.set(key, current)
	d := p.Decision
	if outcome.result == applyDryRun {
		c.metrics.skipped.WithLabelValues(skipDryRun).Inc()
		logger.Info("Dry run: not writing", "action", d.Action, "note", note)
		c.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonDryRun, "DryRun", "Dry run, would %s: %s", d.Action, note)
		return
	}
	switch d.Action {
	case plan.ActionRoll:
		c.metrics.rollouts.WithLabelValues(key.groupKind, key.name.Namespace).Inc()
		logger.Info("Rolled", "changed", d.Changed)
		c.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonRolled, "Roll", "Rolled: %s", note)
	case plan.ActionAdopt:
		// No Event: adopting is the quiet, common case (every workload when
		// reroll is first installed), and an Event each would flood the API
		// server, and reroll's memory with Events waiting for their rate
		// limit. The consumed annotation and the metric show it.
		c.metrics.skipped.WithLabelValues(skipAdopted).Inc()
		logger.V(2).Info("Adopted", "consumed", len(p.Consumed))
	case plan.ActionRebaseline:
		c.metrics.skipped.WithLabelValues(skipRebaselined).Inc()
		logger.Info("Re-baselined without rolling", "why", d.Why)
		c.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonRebaselined, "Rebaseline", "%s", note)
	case plan.ActionRecord:
		c.metrics.skipped.WithLabelValues(skipReferences).Inc()
		logger.V(2).Info("Recorded changed references without rolling")
	}
}

// describe says what a plan's write does, naming objects and keys, never
// values. The keys that changed come from comparing the digests the
// workload's previous sync read with current.
func (c *Controller) describe(key workloadKey, p plan.Plan, current map[plan.ConfigRef]map[string]string) string {
	d := p.Decision
	switch d.Action {
	case plan.ActionAdopt:
		return fmt.Sprintf("recorded a baseline of %d consumed ConfigMaps and Secrets without rolling; changes to their content will roll this %s", len(p.Consumed), key.groupKind)
	case plan.ActionRebaseline:
		return fmt.Sprintf("recorded a new baseline without rolling, because %s", d.Why)
	case plan.ActionRecord:
		return "recorded changed references without rolling"
	}
	if len(d.Changed) == 0 {
		return fmt.Sprintf("rolled on first sight (--roll-on-adopt), consuming %d ConfigMaps and Secrets", len(p.Consumed))
	}
	byID := make(map[string]plan.Consumption, len(p.Consumed))
	for _, u := range p.Consumed {
		byID[plan.EntryID(u)] = u
	}
	last, _ := c.lastDigests.get(key)
	parts := make([]string, 0, len(d.Changed))
	for _, id := range d.Changed {
		u := byID[id]
		part := u.Ref.String()
		if before, ok := last[u.Ref]; ok {
			if keys := plan.ChangedKeys(u, before, current[u.Ref]); len(keys) > 0 {
				part += " (keys " + strings.Join(keys, ", ") + ")"
			}
		}
		parts = append(parts, part)
	}
	return "consumed content changed in " + strings.Join(parts, ", ")
}

// warn reports bad input on a workload: a Warning Event and a log line.
func (c *Controller) warn(ctx context.Context, w workload, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.metrics.warnings.WithLabelValues(reason).Inc()
	klog.FromContext(ctx).Info("Warning", "reason", reason, "message", msg)
	c.recorder.Eventf(w.object, nil, corev1.EventTypeWarning, reason, "Sync", "%s", msg)
}

// reportHold reports a held roll: a log line, and an Event, when the hold
// starts or changes reason (a paced workload is looked at many times);
// a halt also gets one Event on the failed workload. It queues the key
// again when the hold has an end in time.
func (c *Controller) reportHold(ctx context.Context, key workloadKey, w workload, p plan.Plan, h plan.Hold) {
	logger := klog.FromContext(ctx)
	for _, pr := range p.Problems {
		c.warn(ctx, w, pr.Reason, "%s", pr.Message)
	}
	if h.Wait > 0 {
		c.queue.AddAfter(key, h.Wait)
	}
	if !c.holds.held(key, h.Reason) {
		logger.V(4).Info("Roll still held", "reason", h.Reason, "recheckAfter", h.Wait)
		return
	}
	switch h.Reason {
	case plan.HoldInvalid:
		c.warn(ctx, w, plan.ReasonInvalidAnnotation, "%s", h.Message)
		return
	case plan.HoldHalted:
		c.recorder.Eventf(w.object, nil, corev1.EventTypeWarning, plan.ReasonRolloutHalted, "Hold", "Roll held: %s", h.Message)
		c.reportFailedRollout(ctx, h)
	case plan.HoldThrottled:
		c.recorder.Eventf(w.object, nil, corev1.EventTypeWarning, plan.ReasonRolloutThrottled, "Hold", "Roll held: %s", h.Message)
	default:
		c.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonRolloutHeld, holdAction(h.Reason), "Roll held (%s): %s", h.Reason, h.Message)
	}
	logger.Info("Roll held", "reason", h.Reason, "message", h.Message)
}

// holdAction returns the action of a RolloutHeld Event: "Hold" and the
// reason ("HoldWave", "HoldWindow"). client-go's events broadcaster folds an
// Event into the series of an earlier one with the same type, reason,
// action and regarding object (resourceVersion included) for six minutes,
// and the series keeps the earlier note. With one action for every reason,
// a workload held by its wave and then, unchanged, by a window that closed
// meanwhile showed the wave hold twice, and never the window's opening.
func holdAction(reason plan.HoldReason) string {
	r := string(reason)
	if r == "" {
		return "Hold"
	}
	return "Hold" + strings.ToUpper(r[:1]) + r[1:]
}

// reportFailedRollout gives the consumer whose failed rollout halts a
// change one Warning Event per change.
func (c *Controller) reportFailedRollout(ctx context.Context, h plan.Hold) {
	failedKey := keyOf(h.Failed)
	if !c.holds.haltToReport(failedKey, h.Change) {
		return
	}
	a, ok := c.adapterFor(failedKey.groupKind)
	if !ok {
		return
	}
	failed, err := getWorkload(a, failedKey.name)
	if err != nil {
		return
	}
	object := plan.RefOfChange(h.Change).String()
	msg := fmt.Sprintf("this rollout, which reroll started for a change of %s, failed: reroll rolls no further consumer of that change until this workload recovers or %s changes again", object, object)
	klog.FromContext(ctx).Info("Rollout failed; halting its change", "failed", failedKey, "object", object)
	c.recorder.Eventf(failed.object, nil, corev1.EventTypeWarning, plan.ReasonRolloutHalted, "Halt", "%s", msg)
}

// releaseHold notes that key's roll is no longer held, if it was, and
// drops a pacing slot it no longer needs.
func (c *Controller) releaseHold(ctx context.Context, key workloadKey) {
	c.slots.pacer.forget(key)
	if reason, ok := c.holds.released(key); ok {
		klog.FromContext(ctx).V(2).Info("Hold ended", "reason", reason)
	}
}
