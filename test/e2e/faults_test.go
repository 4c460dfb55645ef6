//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// revisions counts, per Deployment of ns, the ReplicaSets it owns: one per
// pod template it has had, its revision history.
func revisions(t *testing.T, ns string) map[string]int {
	t.Helper()
	list, err := testEnv.client.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, rs := range list.Items {
		for _, o := range rs.OwnerReferences {
			if o.Kind == "Deployment" {
				out[o.Name]++
			}
		}
	}
	return out
}

// TestKillDuringFanOut: reroll is killed with SIGKILL in the middle of a
// fan-out of one change to 500 Deployments (after at least 50 and before
// 450 rolled) and started again: every Deployment ends rolled exactly once,
// none missed and none twice, by its revision history.
func TestKillDuringFanOut(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	names := consumerNames("f", 500)
	createShared(t, ns, nil, names, 0, nil)
	b := newBarrier(t, ns)
	// A client rate limit that makes the fan-out last about 10s.
	r := startReroll(t, ns, "--kube-api-qps=50", "--kube-api-burst=50", "--workers=8")
	waitAllAdopted(t, ns, names)
	rolls := watchNamespaceRolls(t, ns)
	updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	rolls.waitTotal("f-", 50)
	r.kill()
	killedAt := len(rolls.times("f-"))
	t.Logf("killed after %d of 500 rolled", killedAt)
	if killedAt >= 450 {
		t.Fatalf("the fan-out was nearly over (%d rolled) before the kill; the test proves nothing", killedAt)
	}
	startReroll(t, ns)
	rolls.waitTotal("f-", 500)
	b.wait()
	rolls.expectEachOnce(names)
	revs := revisions(t, ns)
	for _, n := range names {
		if revs[n] != 2 {
			t.Errorf("%s has %d revisions, want 2 (its first template and one roll)", n, revs[n])
		}
	}
}

// TestWriteContention: while reroll rolls 100 Deployments, another client
// patches their labels and their pod templates (its own annotation) 50
// times a second. Every user edit is kept, every Deployment is rolled by
// reroll once, and no sync error is left.
func TestWriteContention(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	names := consumerNames("w", 100)
	createShared(t, ns, nil, names, 0, nil)
	b := newBarrier(t, ns)
	r := startReroll(t, ns, "--workers=8")
	waitAllAdopted(t, ns, names)
	rolls := watchNamespaceRolls(t, ns)

	// The other writer: round-robin over the Deployments, 50 patches a
	// second, for 6 seconds; it remembers its last value for each.
	last := map[string]int{}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 300; i++ {
			<-tick.C
			name := names[i%len(names)]
			patch := fmt.Sprintf(`{"metadata":{"labels":{"user-edit":"%d"}},"spec":{"template":{"metadata":{"annotations":{"example.com/user-edit":"%d"}}}}}`, i, i)
			_, err := testEnv.client.AppsV1().Deployments(ns).Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch),
				metav1.PatchOptions{FieldManager: "other-writer"})
			if err == nil {
				mu.Lock()
				last[name] = i
				mu.Unlock()
			}
		}
	}()
	updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	<-done
	rolls.waitTotal("w-", 100)
	b.wait()
	// reroll's rolls are changes of its config hash; the writer's own
	// template edits roll the Deployments too, but are not reroll's.
	rolls.expectEachOnce(names)
	list, err := testEnv.client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list.Items {
		want, ok := last[d.Name]
		if !ok {
			continue
		}
		if d.Labels["user-edit"] != strconv.Itoa(want) || d.Spec.Template.Annotations["example.com/user-edit"] != strconv.Itoa(want) {
			t.Errorf("%s lost a user edit: label %q, annotation %q, want %d", d.Name, d.Labels["user-edit"], d.Spec.Template.Annotations["example.com/user-edit"], want)
		}
		if d.Spec.Template.Annotations[annotationConfigHash] == "" {
			t.Errorf("%s lost reroll's config hash", d.Name)
		}
	}
	_, body := r.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "reroll_sync_errors_total") && !strings.HasSuffix(line, " 0") {
			t.Errorf("sync errors: %s", line)
		}
	}
}

// TestLeaseStolen: another identity takes reroll's Lease by force. The old
// leader stops writing as soon as a renewal sees the new holder (within a
// retry period), exits once its renewals have failed for the renew deadline,
// and a change made during the hand-over to a second replica rolls once.
func TestLeaseStolen(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "0"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	a := startReplica(t, ns, "replica-a")
	waitLeader(t, ns, "replica-a")
	waitAdopted(t, ns, "web")
	b := startReplica(t, ns, "replica-b")

	ctx := context.Background()
	lease, err := testEnv.client.CoordinationV1().Leases(ns).Get(ctx, "reroll", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stolen := lease.DeepCopy()
	now := metav1.NewMicroTime(time.Now())
	stolen.Spec = coordinationv1.LeaseSpec{HolderIdentity: ptr.To("thief"), LeaseDurationSeconds: ptr.To[int32](int32(testLeaseDuration.Seconds())),
		AcquireTime: &now, RenewTime: &now, LeaseTransitions: ptr.To(ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1)}
	if _, err := testEnv.client.CoordinationV1().Leases(ns).Update(ctx, stolen, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stole := time.Now()
	// Once the old leader has seen the new holder (within a retry period),
	// a change must not be written by it, though it still runs until its
	// renew deadline ends.
	a.waitLog(1, "A renewal found another holder of the Lease", `"thief"`)
	t.Logf("the old leader saw the new holder %v after the steal", time.Since(stole).Round(time.Millisecond))
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	select {
	case <-a.exited:
	case <-time.After(testRenewDeadline + testRetryPeriod + time.Second):
		t.Fatalf("the old leader still runs %v after its Lease was stolen (renew deadline %v)", time.Since(stole), testRenewDeadline)
	}
	t.Logf("the old leader exited %v after the Lease was stolen", time.Since(stole).Round(time.Millisecond))
	if n := a.countLog(`"Rolled"`); n != 0 {
		t.Errorf("the old leader rolled %d times after its Lease was stolen", n)
	}
	if a.countLog("No longer the leader: not writing") == 0 {
		t.Errorf("the old leader did not skip the write of the change made after the steal")
	}

	// The hand-over: the thief never renews; the other replica takes over
	// after the lease duration and rolls the change once.
	waitLeader(t, ns, "replica-b")
	waitReplicaSets(t, ns, "web", 2)
	bar := newBarrier(t, ns)
	waitAdopted(t, ns, "barrier")
	bar.wait()
	if n := replicaSets(t, ns, "web"); n != 2 {
		t.Errorf("web has %d ReplicaSets after the hand-over, want 2 (one roll)", n)
	}
	_ = b // the standby that takes over
}
