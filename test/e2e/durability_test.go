//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
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
	// Each Deployment's first ReplicaSet, before any roll: a roll the
	// Deployment controller saw first would leave it only one.
	waitReplicaSetCounts(t, ns, names, 1)
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
	// The Deployment controller makes each roll's ReplicaSet a little
	// later.
	revs := waitReplicaSetCounts(t, ns, names, 2)
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

// waitReplicaSetCounts waits, for up to 3 minutes (the Deployment controller is
// slow when the whole suite keeps it busy), until each of names in ns has
// at least n ReplicaSets, failing the test with those that have fewer. It
// returns the last count.
func waitReplicaSetCounts(t *testing.T, ns string, names []string, n int) map[string]int {
	t.Helper()
	var revs map[string]int
	var behind []string
	_ = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) {
		revs, behind = revisions(t, ns), nil
		for _, name := range names {
			if revs[name] < n {
				behind = append(behind, name)
			}
		}
		return len(behind) == 0, nil
	})
	if len(behind) > 0 {
		t.Fatalf("%d Deployments have fewer than %d ReplicaSets after 3 minutes: %q", len(behind), n, behind)
	}
	return revs
}
