package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// resumePendingChanges reads the changes a previous run wrote down before
// some of their consumers were adopted (pendingstore.go) and gives each
// consumer that has not rolled since its baseline back, as if this run had
// seen the change: it is urgent, and its next sync compares against the
// object before the change. Workers start only after it: one adopting such
// a consumer first would take the new content as its baseline. A read that
// fails is retried until ctx is done.
func (c *Controller) resumePendingChanges(ctx context.Context) error {
	c.dropRolledBaselines()
	if !c.pending.enabled() {
		return nil
	}
	logger := klog.FromContext(ctx)
	var records []*pendingRecord
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 1 << 30, Cap: 10 * time.Second},
		func(ctx context.Context) (bool, error) {
			var err error
			if records, err = c.pending.load(ctx); err != nil {
				logger.Error(err, "Reading pending changes; retrying before starting workers")
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		return fmt.Errorf("reading pending changes: %w", err)
	}
	var kept []*pendingRecord
	resumed := 0
	for _, r := range records {
		waiting := c.resumeRecord(r)
		resumed += len(waiting)
		if len(waiting) > 0 {
			kept = append(kept, &pendingRecord{namespace: r.namespace, ref: r.ref, before: r.before, workloads: waiting})
		}
	}
	if len(records) > 0 {
		// Written back at once: what the previous run kept, less the
		// consumers adopted since.
		c.pending.keep(kept)
		logger.Info("Resumed changes made before their consumers were adopted", "changes", len(records), "consumers", resumed)
	}
	return nil
}

// dropRolledBaselines forgets the baselines of workloads that rolled since
// they were kept. A standby keeps baselines as its handlers see changes,
// while the leader rolls; comparing such a workload against its baseline
// after a takeover would roll it a second time.
func (c *Controller) dropRolledBaselines() {
	for _, key := range c.memory.changes.withBaselines() {
		if _, rolled := c.rolledSince(key); rolled {
			c.memory.changes.dropBaselines(key)
		}
	}
}

// rolledSince reports whether key, a workload that was not adopted when a
// baseline was kept for it, is cached, and whether reroll rolled it since:
// it carries reroll.dev/rollout.
func (c *Controller) rolledSince(key workloadKey) (cached, rolled bool) {
	w, ok := c.view.cachedWorkloadOf(key)
	if !ok {
		return false, false
	}
	_, rolled = w.meta.GetAnnotations()[plan.AnnotationRollout]
	return true, rolled
}

// resumeRecord gives each consumer of r that exists and has not rolled
// since its baseline back, enqueues it, and returns those consumers. Not
// only those still without a recorded state: an adoption that read the new
// content before the change's event was handled recorded it as if the Pods
// ran it, and the roll that was to follow may not have been written before
// the crash. A consumer adopted against this baseline whose keys did not
// change compares against it again, and still does not roll. One that
// rolled (reroll.dev/rollout), and one deleted, need nothing.
func (c *Controller) resumeRecord(r *pendingRecord) []workloadKey {
	var waiting []workloadKey
	for _, key := range r.workloads {
		if cached, rolled := c.rolledSince(key); !cached || rolled {
			continue
		}
		c.memory.changes.changed(key, r.ref, r.before)
		c.enqueue(key, 0)
		waiting = append(waiting, key)
	}
	return waiting
}
