//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Invariants 1 and 7: a ConfigMap change makes kube-controller-manager create
// exactly one new ReplicaSet, through reroll's single annotation patch.
func TestConfigMapChangeRollsOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"LOG_LEVEL": "info"}),
		testDeployment(ns, "web", auto(), envFrom("cfg")))
	b := newBarrier(t, ns)
	startReroll(t, ns)
	waitAdopted(t, ns, "web")
	if hash := getDeployment(t, ns, "web").Spec.Template.Annotations[annotationConfigHash]; hash != "" {
		t.Fatalf("adoption wrote the pod template: %q", hash)
	}

	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["LOG_LEVEL"] = "debug" })
	waitReplicaSets(t, ns, "web", 2)
	b.wait()
	if n := replicaSets(t, ns, "web"); n != 2 {
		t.Fatalf("%d ReplicaSets after one change, want 2", n)
	}
	d := getDeployment(t, ns, "web")
	if d.Spec.Template.Annotations[annotationConfigHash] == "" {
		t.Error("no config hash on the rolled template")
	}
	assertOnlyRerollAnnotationsChanged(t, d)
	waitEvent(t, ns, "web", "Rolled")
}

// assertOnlyRerollAnnotationsChanged checks, through managedFields, that
// reroll's field manager owns exactly its three annotations: the consumed
// state and the rollout record on the workload, the config hash on the pod
// template.
func assertOnlyRerollAnnotationsChanged(t *testing.T, d interface {
	GetManagedFields() []metav1.ManagedFieldsEntry
}) {
	t.Helper()
	for _, mf := range d.GetManagedFields() {
		if mf.Manager != "reroll" {
			continue
		}
		if mf.Operation != metav1.ManagedFieldsOperationUpdate {
			t.Errorf("reroll's operation is %s, want a patch (Update)", mf.Operation)
		}
		var fields map[string]any
		if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields); err != nil {
			t.Fatal(err)
		}
		got := ownedLeaves("", fields)
		want := []string{
			"metadata.annotations.reroll.dev/consumed",
			"metadata.annotations.reroll.dev/rollout",
			"spec.template.metadata.annotations.reroll.dev/config-hash",
		}
		if !slices.Equal(got, want) {
			t.Errorf("reroll owns %q, want exactly %q", got, want)
		}
		return
	}
	t.Error("no managedFields entry for field manager reroll")
}

// ownedLeaves returns the sorted paths of the fields a FieldsV1 set owns.
func ownedLeaves(prefix string, set map[string]any) []string {
	var out []string
	for k, v := range set {
		if k == "." {
			continue
		}
		path := strings.TrimPrefix(k, "f:")
		if prefix != "" {
			path = prefix + "." + path
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !(len(sub) == 1 && sub["."] != nil) {
			out = append(out, ownedLeaves(path, sub)...)
		} else {
			out = append(out, path)
		}
	}
	slices.Sort(out)
	return out
}

// Invariant 1 for Secrets: a Secret change rolls once.
func TestSecretChangeRollsOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, secret(ns, "db", map[string]string{"password": "one"}),
		testDeployment(ns, "api", auto(), secretVolume("db")))
	b := newBarrier(t, ns)
	startReroll(t, ns)
	waitAdopted(t, ns, "api")

	updateSecret(t, ns, "db", func(s *corev1.Secret) { s.Data["password"] = []byte("two") })
	waitReplicaSets(t, ns, "api", 2)
	b.wait()
	if n := replicaSets(t, ns, "api"); n != 2 {
		t.Fatalf("%d ReplicaSets after one change, want 2", n)
	}
	d := getDeployment(t, ns, "api")
	for _, v := range []string{d.Annotations[annotationConsumed], d.Spec.Template.Annotations[annotationConfigHash]} {
		if strings.Contains(v, "two") || strings.Contains(v, "one") {
			t.Errorf("annotation %q contains the Secret value", v)
		}
	}
}

// Invariant 5: a change to a key no consumer reads, a label-only change and
// resyncs each cause no new ReplicaSet.
func TestNonConsumedChangesDoNotRoll(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"used": "1", "unused": "1"}),
		testDeployment(ns, "web", auto(), envKey("cfg", "used")))
	b := newBarrier(t, ns)
	r := startReroll(t, ns, "--resync-period=1s")
	waitAdopted(t, ns, "web")

	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["unused"] = "2" })
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Labels = map[string]string{"touched": "yes"} })
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Annotations = map[string]string{"note": "x"} })
	b.wait()
	// Resyncs: wait for three more syncs of web than it had, each a resync.
	before := r.countLog("Synced", fmt.Sprintf(`workload="Deployment %s/web"`, ns))
	r.waitLog(before+3, "Synced", fmt.Sprintf(`workload="Deployment %s/web"`, ns))
	if n := replicaSets(t, ns, "web"); n != 1 {
		t.Fatalf("%d ReplicaSets, want 1: a non-consumed change rolled", n)
	}
	if got := eventReasons(t, ns, "web"); strings.Contains(strings.Join(got, ","), "Rolled") {
		t.Errorf("Events %q include Rolled", got)
	}

	// The consumed key still rolls.
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["used"] = "2" })
	waitReplicaSets(t, ns, "web", 2)
}

// Invariant 2: a burst of changes to several objects within the debounce
// window rolls once.
func TestBurstRollsOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "a", map[string]string{"k": "0"}), configMap(ns, "b", map[string]string{"k": "0"}),
		secret(ns, "s", map[string]string{"k": "0"}),
		testDeployment(ns, "web", auto(), both(envFrom("a"), envFrom("b"), secretVolume("s"))))
	b := newBarrier(t, ns)
	startReroll(t, ns, "--debounce=3s")
	waitAdopted(t, ns, "web")

	for i := 1; i <= 3; i++ {
		updateConfigMap(t, ns, "a", func(cm *corev1.ConfigMap) { cm.Data["k"] = fmt.Sprint(i) })
		updateConfigMap(t, ns, "b", func(cm *corev1.ConfigMap) { cm.Data["k"] = fmt.Sprint(i) })
		updateSecret(t, ns, "s", func(s *corev1.Secret) { s.Data["k"] = []byte(fmt.Sprint(i)) })
	}
	waitReplicaSets(t, ns, "web", 2)
	b.wait()
	if n := replicaSets(t, ns, "web"); n != 2 {
		t.Fatalf("%d ReplicaSets after a burst, want 2", n)
	}
}

// Invariants 3 and 4: adoption does not roll; a restart without changes
// rolls nothing; a change made while reroll was stopped rolls once after it
// starts.
func TestRestartIsSafeAndCatchesUp(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const n = 5
	create(t, configMap(ns, "shared", map[string]string{"k": "0"}))
	for i := range n {
		create(t, testDeployment(ns, fmt.Sprint("web-", i), auto(), envFrom("shared")))
	}
	b := newBarrier(t, ns)
	r := startReroll(t, ns)
	for i := range n {
		waitAdopted(t, ns, fmt.Sprint("web-", i))
	}
	b.wait()
	r.stop()

	// Restart without changes: every workload is synced, nothing is written.
	r = startReroll(t, ns)
	for i := range n {
		r.waitLog(1, "Synced", fmt.Sprintf(`workload="Deployment %s/web-%d"`, ns, i))
	}
	b.wait()
	for i := range n {
		if got := replicaSets(t, ns, fmt.Sprint("web-", i)); got != 1 {
			t.Errorf("web-%d has %d ReplicaSets after a restart without changes, want 1", i, got)
		}
	}
	if c := r.countLog(`"Rolled"`, fmt.Sprintf(`workload="%s/web-`, ns)); c != 0 {
		t.Errorf("restart logged %d rolls of web-*", c)
	}
	r.stop()

	// A change while stopped rolls each consumer once after the start.
	updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	startReroll(t, ns)
	for i := range n {
		waitReplicaSets(t, ns, fmt.Sprint("web-", i), 2)
	}
	b.wait()
	for i := range n {
		if got := replicaSets(t, ns, fmt.Sprint("web-", i)); got != 2 {
			t.Errorf("web-%d has %d ReplicaSets, want 2", i, got)
		}
	}
}

// Invariant 6: deleting a consumed ConfigMap does not roll and emits a
// Warning; re-creating it with the same content rolls nothing, with
// different content rolls once.
func TestDeletedConfigMap(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	b := newBarrier(t, ns)
	startReroll(t, ns)
	waitAdopted(t, ns, "web")

	if err := testEnv.client.CoreV1().ConfigMaps(ns).Delete(context.Background(), "cfg", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ns, "web", "MissingReference")
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}))
	b.wait()
	if n := replicaSets(t, ns, "web"); n != 1 {
		t.Fatalf("%d ReplicaSets after delete and identical re-create, want 1", n)
	}
	if err := testEnv.client.CoreV1().ConfigMaps(ns).Delete(context.Background(), "cfg", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	create(t, configMap(ns, "cfg", map[string]string{"k": "2"}))
	waitReplicaSets(t, ns, "web", 2)
	b.wait()
	if n := replicaSets(t, ns, "web"); n != 2 {
		t.Fatalf("%d ReplicaSets after re-create with new content, want 2", n)
	}
}

// Invariant 8: deleting the hash key does not cause a mass rollout; every
// workload is re-baselined under the new key, with an Event.
func TestHashKeyLossDoesNotRollout(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const n = 5
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}))
	for i := range n {
		create(t, testDeployment(ns, fmt.Sprint("web-", i), auto(), envFrom("cfg")))
	}
	r := startReroll(t, ns)
	before := map[string]string{}
	for i := range n {
		name := fmt.Sprint("web-", i)
		before[name] = waitAdopted(t, ns, name)
	}
	r.stop()
	if err := testEnv.client.CoreV1().Secrets(ns).Delete(context.Background(), "reroll-hash-key", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	startReroll(t, ns)
	for name, old := range before {
		waitFor(t, "re-baseline of "+name, func(ctx context.Context) (bool, error) {
			d, err := testEnv.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			now := d.Annotations[annotationConsumed]
			return now != "" && now != old, nil
		})
		waitEvent(t, ns, name, "Rebaselined")
		if got := replicaSets(t, ns, name); got != 1 {
			t.Errorf("%s has %d ReplicaSets after key loss, want 1", name, got)
		}
	}
}

// --dry-run writes nothing to workloads even when content changes.
func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	r := startReroll(t, ns, "--dry-run")
	r.waitLog(1, "Dry run: not writing", `action="adopt"`)
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	r.waitLog(1, "Dry run: not writing", `action="roll"`)
	d := getDeployment(t, ns, "web")
	if _, ok := d.Annotations[annotationConsumed]; ok {
		t.Error("dry run wrote the consumed annotation")
	}
	if n := replicaSets(t, ns, "web"); n != 1 {
		t.Errorf("%d ReplicaSets in a dry run, want 1", n)
	}
}
