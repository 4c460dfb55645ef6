package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/reroll/reroll/pkg/plan"
)

// applyOutcome is what apply did.
type applyOutcome struct {
	result applyResult
	// rejection is the API server's answer to a rejected patch.
	rejection error
}

// applyResult says which write apply made.
type applyResult int

const (
	// applyNothing: the plan needs no write.
	applyNothing applyResult = iota
	// applyDryRun: the write was only remembered (--dry-run).
	applyDryRun
	// applyWritten: the patch was made.
	applyWritten
	// applyGone: the workload was deleted before the patch.
	applyGone
	// applyRejected: the API server rejected the patch as invalid.
	applyRejected
	// applyNotLeader: the write was skipped, as this replica no longer
	// leads (Options.MayWrite).
	applyNotLeader
	// applyNotified: a roll was sent to the webhook (--webhook-url)
	// instead, and its state recorded.
	applyNotified
)

// apply makes a plan's write: under --dry-run it only remembers the state
// it would write; otherwise it patches the workload, with record, the
// rollout a roll starts. It returns an error only when a retry can help.
// The caller releases a claimed roll that did not write (writeSkipped).
func (c *Controller) apply(ctx context.Context, a workloadAdapter, key workloadKey, w workload, p plan.Plan, record *plan.RolloutRecord) (applyOutcome, error) {
	if p.OptedOut || p.Blocked || p.Decision.Action == plan.ActionNone {
		return applyOutcome{result: applyNothing}, nil
	}
	if c.opts.DryRun {
		c.dryRunStates.set(key, p.Desired.String())
		return applyOutcome{result: applyDryRun}, nil
	}
	writes := c.writesOf(p, record)
	body, err := annotationPatch(writes, a.templatePath())
	if err != nil {
		return applyOutcome{}, err
	}
	if c.opts.MayWrite != nil && !c.opts.MayWrite(ctx) {
		return applyOutcome{result: applyNotLeader}, nil
	}
	notified := c.opts.WebhookURL != "" && p.Decision.Action == plan.ActionRoll
	if notified {
		// Told before the state is recorded: a failure here, or a crash
		// before the patch, leaves the change pending, so it is sent again
		// (at least once), never lost.
		if err := c.notifyWebhook(ctx, key, p); err != nil {
			return applyOutcome{}, err
		}
	}
	// The patch is not conditional on the resourceVersion: it only sets
	// reroll's own annotations, so the status writes that workload
	// controllers make all the time need not conflict with it. A stale cache
	// is handled by cacheBehindOwnWrite instead.
	var newRV string
	if j, ok := a.(*jobAdapter); ok && p.Decision.Action == plan.ActionRoll && !notified {
		newRV, err = c.recreateJob(ctx, j, types.NamespacedName(key.name), map[string]string{
			plan.AnnotationConsumed: writes.state, plan.AnnotationRollout: writes.rollout})
	} else {
		newRV, err = a.patch(ctx, key.name, body, metav1.PatchOptions{FieldManager: c.opts.FieldManager})
	}
	switch {
	case apierrors.IsNotFound(err):
		return applyOutcome{result: applyGone}, nil
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return applyOutcome{result: applyRejected, rejection: err}, nil
	case err != nil:
		return applyOutcome{}, fmt.Errorf("patching %s: %w", key, err)
	}
	c.writes.patched(key, w.meta.GetResourceVersion(), newRV)
	if notified {
		return applyOutcome{result: applyNotified}, nil
	}
	if p.Decision.Action == plan.ActionRoll {
		c.flaps.rolled(key)
	}
	return applyOutcome{result: applyWritten}, nil
}

// writesOf returns what the patch of plan p writes: the consumed state and,
// for a roll, the rollout record and what rolls the workload (the template's
// hash, or spec.restartAt). With --webhook-url a roll rolls nothing: the
// webhook is told instead, and the state alone is recorded.
func (c *Controller) writesOf(p plan.Plan, record *plan.RolloutRecord) patchWrites {
	writes := patchWrites{state: p.Desired.String()}
	if p.Decision.Action != plan.ActionRoll || c.opts.WebhookURL != "" {
		return writes
	}
	if p.Strategy == plan.StrategyRestart {
		writes.restartAt = c.opts.Clock.Now().UTC().Format(time.RFC3339)
	} else {
		writes.configHash = plan.CalculateConfigHash(c.opts.HashKey, p.Desired)
	}
	if record != nil {
		writes.rollout = record.String()
	}
	return writes
}

// writeSkipped reports whether apply meant to write but did not: the
// workload was gone, the patch rejected, or this replica no longer leads.
func (o applyOutcome) writeSkipped() bool {
	return o.result == applyGone || o.result == applyRejected || o.result == applyNotLeader
}

// patchWrites are the values one patch writes; empty ones are left out.
type patchWrites struct {
	// state is the consumed state, and rollout the rollout record, both on
	// the workload's metadata.
	state, rollout string
	// configHash goes on the pod template (a roll by the template), and
	// restartAt in spec.restartAt (a roll by a restart).
	configHash, restartAt string
}

// annotationPatch returns the patch reroll writes: the consumed state and,
// when rolling, the rollout record (if not empty) on the workload's
// metadata, and either the config hash on the pod template found at
// templatePath or spec.restartAt. The body is valid both as a strategic
// merge patch and as a JSON merge patch.
func annotationPatch(w patchWrites, templatePath []string) ([]byte, error) {
	annotations := map[string]string{plan.AnnotationConsumed: w.state}
	if w.rollout != "" {
		annotations[plan.AnnotationRollout] = w.rollout
	}
	patch := map[string]any{
		"metadata": map[string]any{"annotations": annotations},
	}
	if w.configHash != "" {
		var node any = map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{plan.AnnotationConfigHash: w.configHash}},
		}
		for i := len(templatePath) - 1; i >= 0; i-- {
			node = map[string]any{templatePath[i]: node}
		}
		maps.Copy(patch, node.(map[string]any))
	}
	if w.restartAt != "" {
		patch["spec"] = map[string]any{"restartAt": w.restartAt}
	}
	return json.Marshal(patch)
}
