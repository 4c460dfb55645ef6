//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// outage is how long a control-plane component stays down in the outage
// tests.
const outage = 20 * time.Second

// toggleComponent stops a running control-plane component (SIGKILL), or
// starts a stopped one again on the same port and data, by signalling
// localcluster (SIGUSR1 for kube-apiserver, SIGUSR2 for etcd). It waits
// until cluster.json shows the component stopped, or running and serving.
func toggleComponent(t *testing.T, component string, running bool) {
	t.Helper()
	sig := syscall.SIGUSR1
	if component == "etcd" {
		sig = syscall.SIGUSR2
	}
	before := clusterPIDs(t)[component]
	if err := testEnv.localcluster.Signal(sig); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("%s running: %v", component, running), func(context.Context) (bool, error) {
		pid := clusterPIDs(t)[component]
		return (pid != 0) == running && pid != before, nil
	})
}

// clusterPIDs reads the PIDs of the running components from cluster.json.
func clusterPIDs(t *testing.T) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testEnv.info.StateDir, "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info clusterInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return info.PIDs
}

// waitAPIReady waits until the API server answers /readyz with ok, and
// returns when.
func waitAPIReady(t *testing.T) time.Time {
	t.Helper()
	waitFor(t, "the API server's /readyz", func(ctx context.Context) (bool, error) {
		body, err := testEnv.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
	return time.Now()
}

// templateHashes returns the config hash on the pod template of each
// Deployment of names: what reroll's roll writes.
func templateHashes(t *testing.T, ns string, names []string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(names))
	for _, name := range names {
		out[name] = getDeployment(t, ns, name).Spec.Template.Annotations[annotationConfigHash]
	}
	return out
}

// waitAllRolled waits until reroll has rolled every Deployment of names
// since their hashes were before, and returns when. It reads reroll's own
// write, the pod template, not the ReplicaSets: after an outage
// kube-controller-manager's informers take their own time to come back.
func waitAllRolled(t *testing.T, ns string, names []string, before map[string]string) time.Time {
	t.Helper()
	waitFor(t, fmt.Sprintf("reroll to roll each of %d Deployments", len(names)), func(ctx context.Context) (bool, error) {
		list, err := testEnv.client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil // the API server may still be coming back
		}
		rolled := 0
		for _, d := range list.Items {
			if h, ok := before[d.Name]; ok && d.Spec.Template.Annotations[annotationConfigHash] != h {
				rolled++
			}
		}
		return rolled == len(names), nil
	})
	return time.Now()
}

// waitRevisionsEach waits until every Deployment of names has n revisions
// (ReplicaSets).
func waitRevisionsEach(t *testing.T, ns string, names []string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d revisions of each of %d Deployments", n, len(names)), func(context.Context) (bool, error) {
		got := revisions(t, ns)
		for _, name := range names {
			if got[name] < n {
				return false, nil
			}
		}
		return true, nil
	})
}

// expectRevisions waits until every Deployment of names has n revisions,
// lets reroll finish whatever else it had queued (a barrier), and fails the
// test for every one that then has a number other than n: a roll lost or
// doubled.
func expectRevisions(t *testing.T, ns string, names []string, n int) {
	t.Helper()
	waitRevisionsEach(t, ns, names, n)
	b := newBarrier(t, ns)
	waitAdopted(t, ns, "barrier")
	b.wait()
	got := revisions(t, ns)
	for _, name := range names {
		if got[name] != n {
			t.Errorf("%s has %d revisions, want %d", name, got[name], n)
		}
	}
}

// TestControlPlaneOutage stops kube-apiserver, and then etcd, for 20 s
// while reroll (without leader election) runs, with a change made just
// before each outage. reroll stays up, its /healthz fails during the outage
// and passes after it, the change made before the outage rolls every
// consumer once, and a change made once the API server is ready again
// rolls them once more; the test logs how long that took after /readyz.
//
// It does not run in parallel: the outage would fail every other test.
func TestControlPlaneOutage(t *testing.T) {
	for _, component := range []string{"kube-apiserver", "etcd"} {
		t.Run(component, func(t *testing.T) {
			ns := newNamespace(t)
			names := consumerNames("o", 20)
			createShared(t, ns, nil, names, 0, nil)
			r := startReroll(t, ns)
			waitAllAdopted(t, ns, names)
			r.address() // learned while the API server is up

			// A change just before the outage: it may be in flight.
			hashes := templateHashes(t, ns, names)
			updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
			toggleComponent(t, component, false)
			down := time.Now()
			waitFor(t, "/healthz to report the outage", func(context.Context) (bool, error) {
				code, _ := r.get("/healthz")
				return code == http.StatusInternalServerError, nil
			})
			t.Logf("/healthz failed %v after %s stopped", time.Since(down).Round(time.Millisecond), component)
			time.Sleep(outage - time.Since(down)) // the outage itself, not a wait for a condition
			toggleComponent(t, component, true)
			ready := waitAPIReady(t)
			caughtUp := waitAllRolled(t, ns, names, hashes)
			t.Logf("the change made before the outage: all %d consumers rolled %v after /readyz", len(names), caughtUp.Sub(ready).Round(time.Millisecond))
			waitRevisionsEach(t, ns, names, 2)

			hashes = templateHashes(t, ns, names)
			updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
			changed := time.Now()
			rolled := waitAllRolled(t, ns, names, hashes)
			t.Logf("RECOVERY %s: a change made %v after /readyz rolled all %d consumers in %v",
				component, changed.Sub(ready).Round(time.Millisecond), len(names), rolled.Sub(changed).Round(time.Millisecond))
			expectRevisions(t, ns, names, 3) // rolled once per change
			if code, body := r.get("/healthz"); code != http.StatusOK {
				t.Errorf("/healthz = %d %q after the outage, want 200", code, body)
			}
			select {
			case <-r.exited:
				t.Fatalf("reroll exited during the outage: %v", r.err)
			default:
			}
		})
	}
}

// TestControlPlaneOutageWithLeaderElection stops kube-apiserver for 20 s
// while reroll runs with --leader-elect: it cannot renew its Lease, so it
// exits by design. A change made after the API server is back, while
// reroll is away, rolls every consumer once when reroll starts again.
//
// It does not run in parallel: the outage would fail every other test.
func TestControlPlaneOutageWithLeaderElection(t *testing.T) {
	ns := newNamespace(t)
	names := consumerNames("l", 20)
	createShared(t, ns, nil, names, 0, nil)
	a := startReplica(t, ns, "replica-a")
	waitLeader(t, ns, "replica-a")
	waitAllAdopted(t, ns, names)

	toggleComponent(t, "kube-apiserver", false)
	down := time.Now()
	select {
	case <-a.exited:
		t.Logf("the leader exited %v after the API server stopped (renew deadline %v)", time.Since(down).Round(time.Millisecond), testRenewDeadline)
	case <-time.After(outage):
		t.Fatalf("the leader still runs %v into the outage (renew deadline %v)", outage, testRenewDeadline)
	}
	time.Sleep(outage - time.Since(down)) // the outage itself, not a wait for a condition
	toggleComponent(t, "kube-apiserver", true)
	waitAPIReady(t)

	hashes := templateHashes(t, ns, names)
	updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	started := time.Now()
	startReplica(t, ns, "replica-b")
	rolled := waitAllRolled(t, ns, names, hashes)
	t.Logf("a change made while reroll was away: all %d consumers rolled %v after it started again", len(names), rolled.Sub(started).Round(time.Millisecond))
	expectRevisions(t, ns, names, 2) // rolled once
}
