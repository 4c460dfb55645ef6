//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reroll/reroll/pkg/preflight"
)

// TestNamespacesWithRolesOnly: the chart with watchNamespaces renders a Role
// in each watched namespace and no ClusterRole (exactly what the preflight
// check asks of --namespaces without Namespace reads), and reroll, run as
// the chart's ServiceAccount with --namespaces, rolls the consumers of
// changed ConfigMaps in both listed namespaces and touches nothing in a
// third, without a single Forbidden.
func TestNamespacesWithRolesOnly(t *testing.T) {
	t.Parallel()
	home, a, b, other := newNamespace(t), newNamespace(t), newNamespace(t), newNamespace(t)
	helmInstall(t, home, "reroll-"+home[len(home)-6:], "watchNamespaces={"+a+","+b+"}", "leaderElection.enabled=false")
	granted := grantedTo(t, home)
	for _, g := range granted {
		if g.namespace == "" {
			t.Errorf("the chart grants %+v cluster-wide with watchNamespaces", g)
		}
	}
	assertGrantsExactly(t, granted, preflight.ControllerSettings{
		Namespaces: []string{a, b}, SkipNamespaceObjects: true, BuiltinResources: builtinResources(),
		ControllerNamespace: home, HashKeySecret: "reroll-hash-key", PendingChangesSecret: "reroll-pending-changes", WatchesPods: true,
	})

	for _, ns := range []string{a, b, other} {
		create(t, configMap(ns, "cfg", map[string]string{"k": "1"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	}
	tr, err := testEnv.client.CoreV1().ServiceAccounts(home).CreateToken(context.Background(), "reroll", tokenRequest(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testEnv.controller, append([]string{
		"--kubeconfig=" + tokenKubeconfig(t, tr.Status.Token), "--namespaces=" + a + "," + b,
		"--debounce=100ms", "--v=4"}, localServers()...)...)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+home)
	r := startRerollCommand(t, cmd)
	waitAdopted(t, a, "web")
	waitAdopted(t, b, "web")
	for _, ns := range []string{a, b, other} {
		updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	}
	waitReplicaSets(t, a, "web", 2)
	waitReplicaSets(t, b, "web", 2)
	waitEvent(t, a, "web", "Rolled")
	waitEvent(t, b, "web", "Rolled")
	if n := replicaSets(t, other, "web"); n != 1 {
		t.Errorf("the unlisted namespace's consumer has %d ReplicaSets, want 1", n)
	}
	if d := getDeployment(t, other, "web"); d.Annotations[annotationConsumed] != "" {
		t.Errorf("the unlisted namespace's consumer was adopted: %v", d.Annotations)
	}
	assertNoForbidden(t, r)
	if !strings.Contains(r.log.String(), "Not reading the watched Namespaces") {
		t.Error("reroll did not say that it runs without the Namespaces' annotations")
	}
}
