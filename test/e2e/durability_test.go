//go:build e2e

package e2e

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestKillDuringFirstAdoption is issue #21's black-box run: 300 Deployments
// consume one ConfigMap that reroll has never seen; it is changed as soon
// as reroll adopted its first workload, reroll is killed with SIGKILL in
// the middle of the change's fan-out, while some consumers are still not
// adopted, and started again. Every consumer ends rolled exactly once, by
// reroll's config hash and by its revision history: the ones not adopted
// before the kill roll against the content before the change, which the
// first run wrote down (reroll-pending-changes), instead of being adopted
// with the new content. The restarted reroll writes its pending-changes
// Secret twice in all.
func TestKillDuringFirstAdoption(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	names := consumerNames("d", 300)
	createShared(t, ns, nil, names, 0, nil)
	b := newBarrier(t, ns)
	rolls := watchNamespaceRolls(t, ns)
	// About 6 s of adoption writes at 50 per second.
	r := startReroll(t, ns, "--kube-api-qps=50", "--kube-api-burst=50", "--workers=8")
	waitFor(t, "adoption to begin", func(context.Context) (bool, error) { return adoptedCount(t, ns, "d-") > 0, nil })
	updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	adoptedBefore := adoptedCount(t, ns, "d-")
	rolls.waitTotal("d-", 30)
	r.kill()
	rolledBefore, adoptedAtKill := len(rolls.times("d-")), adoptedCount(t, ns, "d-")
	t.Logf("changed when %d of 300 were adopted; killed when %d had rolled and %d carried reroll's state", adoptedBefore, rolledBefore, adoptedAtKill)
	if adoptedAtKill == len(names) || rolledBefore >= 270 {
		t.Fatalf("every consumer was adopted (%d) or nearly all rolled (%d) before the kill; the test proves nothing", adoptedAtKill, rolledBefore)
	}
	r = startReroll(t, ns)
	rolls.waitTotal("d-", len(names))
	b.wait()
	rolls.expectEachOnce(names)
	// The Deployment controller makes each roll's ReplicaSet a little later.
	var revs map[string]int
	waitFor(t, "a ReplicaSet for every roll", func(context.Context) (bool, error) {
		revs = revisions(t, ns)
		for _, n := range names {
			if revs[n] < 2 {
				return false, nil
			}
		}
		return true, nil
	})
	// Writes of the pending changes, bounded by the changes: the restarted
	// reroll writes back what it resumed, and writes it away once every
	// consumer settled.
	waitFor(t, "the settled change to be written away", func(context.Context) (bool, error) {
		return r.metric("reroll_pending_change_writes_total") == "2", nil
	})
	for _, n := range names {
		if revs[n] != 2 {
			t.Errorf("%s has %d revisions, want 2 (its first template and one roll)", n, revs[n])
		}
	}
}
