package controller

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/reroll/reroll/pkg/plan"
)

// apply makes a verdict's write: under --dry-run it only remembers the
// state it would write; otherwise the workload's adapter writes it, with
// v.record, the rollout a roll starts. It returns an error only when a
// retry can help. The caller releases a claimed roll that did not write
// (writeSkipped).
func (c *Controller) apply(ctx context.Context, a workloadAdapter, key workloadKey, w workload, v verdict) (applyOutcome, error) {
	p := v.plan
	if p.OptedOut || p.Blocked || p.Decision.Action == plan.ActionNone {
		return applyOutcome{result: applyNothing}, nil
	}
	if c.opts.DryRun {
		c.memory.dryRunStates.set(key, p.Desired.String())
		return applyOutcome{result: applyDryRun}, nil
	}
	if c.opts.MayWrite != nil && !c.opts.MayWrite(ctx) {
		return applyOutcome{result: applyNotLeader}, nil
	}
	notified := c.webhook.enabled() && p.Decision.Action == plan.ActionRoll
	if notified {
		// Told before the state is recorded: a failure here, or a crash
		// before the patch, leaves the change pending, so it is sent again
		// (at least once), never lost.
		if err := c.webhook.notify(ctx, key, p); err != nil {
			return applyOutcome{}, err
		}
	}
	// The patch is not conditional on the resourceVersion: it only sets
	// reroll's own annotations, so the status writes that workload
	// controllers make all the time need not conflict with it. A stale cache
	// is handled by cacheBehindOwnWrite instead.
	newRV, err := a.write(ctx, key.name, c.writesOf(v, notified), c.opts.FieldManager)
	switch {
	case apierrors.IsNotFound(err):
		return applyOutcome{result: applyGone}, nil
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return applyOutcome{result: applyRejected, rejection: err}, nil
	case err != nil:
		return applyOutcome{}, fmt.Errorf("patching %s: %w", key, err)
	}
	c.memory.writes.patched(key, w.meta.GetResourceVersion(), newRV)
	if notified {
		return applyOutcome{result: applyNotified}, nil
	}
	if p.Decision.Action == plan.ActionRoll {
		c.memory.flaps.rolled(key)
	}
	return applyOutcome{result: applyWritten}, nil
}

// writesOf returns what the write of verdict v writes: the consumed state
// and, for a roll, the rollout record and what rolls the workload (the
// template's hash, or spec.restartAt). A roll sent to the webhook instead
// (notified) rolls nothing: the state alone is recorded.
func (c *Controller) writesOf(v verdict, notified bool) patchWrites {
	p := v.plan
	writes := patchWrites{state: p.Desired.String()}
	if p.Decision.Action != plan.ActionRoll || notified {
		return writes
	}
	if p.Strategy == plan.StrategyRestart {
		writes.restartAt = c.opts.Clock.Now().UTC().Format(time.RFC3339)
	} else {
		writes.configHash = plan.CalculateConfigHash(c.opts.HashKey, p.Desired)
	}
	writes.rollout = v.record.String()
	return writes
}

// writeSkipped reports whether apply meant to write but did not: the
// workload was gone, the patch rejected, or this replica no longer leads.
func (o applyOutcome) writeSkipped() bool {
	return o.result == applyGone || o.result == applyRejected || o.result == applyNotLeader
}
