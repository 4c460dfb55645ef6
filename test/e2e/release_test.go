//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// annotationRelease on a ConfigMap or Secret lets the one change whose
// digest it names through the holds.
const annotationRelease = "reroll.dev/release"

// releaseDigest matches the digest a hold Event names for its change.
var releaseDigest = regexp.MustCompile(`set reroll\.dev/release=([0-9a-f]+) on ConfigMap/shared`)

// heldDigests returns the digests that the hold Events regarding name offer
// to release, in no order.
func heldDigests(t *testing.T, ns, name string) []string {
	t.Helper()
	list, err := testEnv.client.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, e := range list.Items {
		if m := releaseDigest.FindStringSubmatch(e.Note); e.Regarding.Name == name && m != nil && !slices.Contains(digests, m[1]) {
			digests = append(digests, m[1])
		}
	}
	return digests
}

// TestReleaseOfAHaltedChange: a ConfigMap in waves ("1,100%") whose canary's
// rollout fails (its new Pod cannot be scheduled, progressDeadlineSeconds
// 10), so the change halts and its 4 other consumers are held. `kubectl
// reroll release configmap/shared`, run as a user would, names the digest
// the hold Events name, and the 4 roll once each. A later change is held
// again: its first wave, the canary, rolls and cannot complete, the 4 do
// not roll, and the release left on the ConfigMap, naming old content, is
// an InvalidAnnotation Warning on it.
//
// It does not run in parallel with the other tests, for the reason
// TestHaltOnFailedRollout gives: the halt needs kube-controller-manager's
// verdict on a progress deadline, which can take minutes beside other
// tests' mass deletions.
func TestReleaseOfAHaltedChange(t *testing.T) {
	ns := newNamespace(t)
	run := startStuckCanary(t, ns, "r", 5, "1,100%", 10, "--kinds=deployments")
	names, b, r, rolls := run.names, run.barrier, run.reroll, run.rolls

	updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "bad" })
	rolls.waitTotal(names[0], 1)
	waitForUpTo(t, "RolloutHalted on every consumer", rolloutTimeout, func(context.Context) (bool, error) {
		return len(eventedNames(t, ns, "RolloutHalted")) == len(names), nil
	})
	b.wait()
	if got := rolls.rolledNames("r-"); !slices.Equal(got, names[:1]) {
		t.Fatalf("halted, rolled %q, want only the canary %s", got, names[0])
	}

	// The operator lets this one change through.
	out := plugin(t, testEnv.info.Kubeconfig, "", "release", "configmap/shared", "-n", ns, "--controller-namespace="+ns)
	_, released, ok := strings.Cut(strings.TrimSpace(out), "set "+annotationRelease+"=")
	if !ok || released == "" {
		t.Fatalf("release said %q", out)
	}
	rolls.waitTotal("r-", len(names))
	b.wait()
	rolls.expectEachOnce(names)
	for _, n := range names[1:] {
		if got := heldDigests(t, ns, n); !slices.Equal(got, []string{released}) {
			t.Errorf("the hold Events of %s name the digests %q, want the one released, %s", n, got, released)
		}
	}

	// A later change, the canary still failing, is held again.
	held := map[string]int{}
	for _, n := range names[1:] {
		held[n] = r.countLog(`"Roll held"`, `kind="Deployment"`, `workload="`+ns+"/"+n+`"`)
	}
	updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "worse" })
	rolls.waitTotal(names[0], 2) // the new change's first wave is the canary again
	for _, n := range names[1:] {
		r.waitLog(held[n]+1, `"Roll held"`, `kind="Deployment"`, `workload="`+ns+"/"+n+`"`)
	}
	waitEvent(t, ns, "shared", "InvalidAnnotation")
	b.wait()
	if n := rolls.count(names[0]); n != 2 {
		t.Errorf("the canary %s rolled %d times, want twice (once per change)", names[0], n)
	}
	for _, n := range names[1:] {
		if c := rolls.count(n); c != 1 {
			t.Errorf("%s rolled %d times, want once: the later change is not released", n, c)
		}
		// Events are sent in the background: the hold's may still be on its way.
		waitFor(t, "a hold Event of "+n+" naming the later change", func(context.Context) (bool, error) {
			got := heldDigests(t, ns, n)
			return len(got) == 2 && slices.Contains(got, released), nil
		})
	}
}
