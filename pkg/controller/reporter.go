package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// reporter tells what reroll did and why: Events, metrics and log lines.
// Every warning about bad input, whatever found it, goes through its one
// warning path (warn). It remembers what it needs to say things once: the
// digests each workload read at its last sync, so that a Rolled Event names
// the changed keys, and the holds already reported.
type reporter struct {
	recorder events.EventRecorder
	metrics  *controllerMetrics
	// lastDigests are the digests each workload read at its last sync.
	lastDigests *keyedMemory[map[plan.ConfigRef]map[string]string]
	// holds are the holds reported, so that each is reported once.
	holds holdBook
	// workload reads a cached workload, for the Event on a failed one.
	workload func(key workloadKey) (workload, bool)
}

// warnFunc is the signature of reporter.warn, for the parts that report
// bad input without a reporter of their own.
type warnFunc func(ctx context.Context, regarding runtime.Object, reason, action, msg string)

// warn reports bad input on an object: the warnings metric, a log line and
// a Warning Event with action.
func (r *reporter) warn(ctx context.Context, regarding runtime.Object, reason, action, msg string) {
	r.metrics.warnings.WithLabelValues(reason).Inc()
	logger := klog.FromContext(ctx)
	if m, ok := regarding.(metav1.Object); ok {
		logger = logger.WithValues("object", klog.KObj(m))
	}
	logger.Info("Warning", "reason", reason, "message", msg)
	r.recorder.Eventf(regarding, nil, corev1.EventTypeWarning, reason, action, "%s", msg)
}

// warnWorkload reports bad input found by a sync of w.
func (r *reporter) warnWorkload(ctx context.Context, w workload, reason, msg string) {
	r.warn(ctx, w.object, reason, "Sync", msg)
}

// report tells what a sync did (see sync.go): Events, metrics and a log
// line. current holds the digests the plan read. It reports whether the
// controller must forget the workload: it is gone or opted out.
func (r *reporter) report(ctx context.Context, key workloadKey, w workload, p plan.Plan, outcome applyOutcome, current map[plan.ConfigRef]map[string]string) (forget bool) {
	logger := klog.FromContext(ctx)
	for _, pr := range p.Problems {
		r.warnWorkload(ctx, w, pr.Reason, pr.Message)
	}
	switch {
	case p.OptedOut || outcome.result == applyGone:
		return true
	case p.Blocked:
		r.metrics.skipped.WithLabelValues(skipBlocked).Inc()
		return
	case outcome.result == applyRejected:
		r.warnWorkload(ctx, w, plan.ReasonPatchRejected, fmt.Sprintf("the API server rejected reroll's patch: %v", outcome.rejection))
		return false
	case outcome.result == applyNotified:
		r.lastDigests.set(key, current)
		r.metrics.skipped.WithLabelValues(skipWebhook).Inc()
		r.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonWebhookSent, "Notify", "Sent to the webhook instead of rolling: consumed content changed")
		return false
	case outcome.result == applyNotLeader:
		logger.Info("No longer the leader: not writing; the next leader syncs this workload")
		return false
	case p.Decision.Action == plan.ActionNone:
		r.metrics.skipped.WithLabelValues(skipUnchanged).Inc()
		r.lastDigests.set(key, current)
		return false
	}
	// The note reads the digests of the previous sync: describe before
	// remembering the current ones.
	note := r.describe(key, p, current)
	r.lastDigests.set(key, current)
	d := p.Decision
	if outcome.result == applyDryRun {
		r.metrics.skipped.WithLabelValues(skipDryRun).Inc()
		logger.Info("Dry run: not writing", "action", d.Action, "note", note)
		r.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonDryRun, "DryRun", "Dry run, would %s: %s", d.Action, note)
		return false
	}
	switch d.Action {
	case plan.ActionRoll:
		r.metrics.rollouts.WithLabelValues(key.groupKind, key.name.Namespace).Inc()
		logger.Info("Rolled", "changed", d.Changed)
		r.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonRolled, "Roll", "Rolled: %s", note)
	case plan.ActionAdopt:
		// No Event: adopting is the quiet, common case (every workload when
		// reroll is first installed), and an Event each would flood the API
		// server, and reroll's memory with Events waiting for their rate
		// limit. The consumed annotation and the metric show it.
		r.metrics.skipped.WithLabelValues(skipAdopted).Inc()
		logger.V(2).Info("Adopted", "consumed", len(p.Consumed))
	case plan.ActionRebaseline:
		r.metrics.skipped.WithLabelValues(skipRebaselined).Inc()
		logger.Info("Re-baselined without rolling", "why", d.Why)
		r.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonRebaselined, "Rebaseline", "%s", note)
	case plan.ActionRecord:
		r.metrics.skipped.WithLabelValues(skipReferences).Inc()
		logger.V(2).Info("Recorded changed references without rolling")
	}
	return false
}

// describe says what a plan's write does, naming objects and keys, never
// values. The keys that changed come from comparing the digests the
// workload's previous sync read with current.
func (r *reporter) describe(key workloadKey, p plan.Plan, current map[plan.ConfigRef]map[string]string) string {
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
	last, _ := r.lastDigests.get(key)
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

// reportHold reports a held roll: a log line, and an Event, when the hold
// starts or changes reason (a paced workload is looked at many times);
// a halt also gets one Event on the failed workload.
func (r *reporter) reportHold(ctx context.Context, key workloadKey, w workload, p plan.Plan, h plan.Hold) {
	logger := klog.FromContext(ctx)
	for _, pr := range p.Problems {
		r.warnWorkload(ctx, w, pr.Reason, pr.Message)
	}
	if !r.holds.held(key, h.Reason) {
		logger.V(4).Info("Roll still held", "reason", h.Reason, "recheckAfter", h.Wait)
		return
	}
	switch h.Reason {
	case plan.HoldInvalid:
		r.warnWorkload(ctx, w, plan.ReasonInvalidAnnotation, h.Message)
		return
	case plan.HoldHalted:
		r.recorder.Eventf(w.object, nil, corev1.EventTypeWarning, plan.ReasonRolloutHalted, "Hold", "Roll held: %s", h.Message)
		r.reportFailedRollout(ctx, h)
	case plan.HoldThrottled:
		r.recorder.Eventf(w.object, nil, corev1.EventTypeWarning, plan.ReasonRolloutThrottled, "Hold", "Roll held: %s", h.Message)
	default:
		r.recorder.Eventf(w.object, nil, corev1.EventTypeNormal, plan.ReasonRolloutHeld, holdAction(h.Reason), "Roll held (%s): %s", h.Reason, h.Message)
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
func (r *reporter) reportFailedRollout(ctx context.Context, h plan.Hold) {
	failedKey := keyOf(h.Failed)
	if !r.holds.haltToReport(failedKey, h.Change) {
		return
	}
	failed, ok := r.workload(failedKey)
	if !ok {
		return
	}
	object := plan.RefOfChange(h.Change).String()
	why := ""
	if h.Why != "" {
		why = " (" + h.Why + ")"
	}
	msg := fmt.Sprintf("this rollout, which reroll started for a change of %s, failed%s: reroll rolls no further consumer of that change until this workload recovers (a whole bake without a failure) or %s changes again", object, why, object)
	klog.FromContext(ctx).Info("Rollout failed; halting its change", "failed", failedKey, "object", object)
	r.recorder.Eventf(failed.object, nil, corev1.EventTypeWarning, plan.ReasonRolloutHalted, "Halt", "%s", msg)
}

// releaseHold notes that key's roll is no longer held, if it was.
func (r *reporter) releaseHold(ctx context.Context, key workloadKey) {
	if reason, ok := r.holds.released(key); ok {
		klog.FromContext(ctx).V(2).Info("Hold ended", "reason", reason)
	}
}
