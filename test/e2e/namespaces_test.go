//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// labelNamespace sets (value non-empty) or removes a label of a Namespace.
func labelNamespace(t *testing.T, ns, key, value string) {
	t.Helper()
	v := "null"
	if value != "" {
		v = fmt.Sprintf("%q", value)
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, key, v)
	if _, err := testEnv.client.CoreV1().Namespaces().Patch(context.Background(), ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestNamespaceSelectorAtRunTime: a cluster-wide reroll with
// --namespace-selector syncs only the workloads of matching Namespaces, and
// follows a label added to and removed from a Namespace while it runs: the
// workload is adopted when its Namespace comes to match, not rolled while
// it does not, and catches up, once, when it matches again.
func TestNamespaceSelectorAtRunTime(t *testing.T) {
	t.Parallel()
	ns, other := newNamespace(t), newNamespace(t)
	// A label only this test uses, so that this cluster-wide reroll leaves
	// every other test's namespaces alone.
	const key = "e2e.reroll.dev/selected"
	labelNamespace(t, other, key, ns)
	create(t, configMap(ns, "cfg", map[string]string{"k": "0"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	b := newBarrier(t, other) // always selected: proves what reroll processed
	startRerollCommand(t, exec.Command(testEnv.controller, append([]string{
		"--kubeconfig=" + testEnv.info.Kubeconfig, "--controller-namespace=" + other,
		"--namespace-selector=" + key + "=" + ns, "--ignore-namespaces=kube-system,kube-public",
		"--workers=1", "--debounce=200ms", "--v=4"}, localServers()...)...))
	waitAdopted(t, other, "barrier")

	b.wait()
	if c := getDeployment(t, ns, "web").Annotations[annotationConsumed]; c != "" {
		t.Fatalf("a workload outside the selection was adopted: %q", c)
	}
	labelNamespace(t, ns, key, ns)
	waitAdopted(t, ns, "web")
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	waitReplicaSets(t, ns, "web", 2)

	labelNamespace(t, ns, key, "")
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	b.wait()
	if n := replicaSets(t, ns, "web"); n != 2 {
		t.Fatalf("rolled outside the selection: %d ReplicaSets", n)
	}
	labelNamespace(t, ns, key, ns)
	waitReplicaSets(t, ns, "web", 3)
	b.wait()
	if n := replicaSets(t, ns, "web"); n != 3 {
		t.Errorf("%d ReplicaSets after the Namespace matched again, want 3 (one catch-up roll)", n)
	}
}
