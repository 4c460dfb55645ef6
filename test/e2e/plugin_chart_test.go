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
)

// hashKeySelector selects reroll's hash key Secrets by the labels reroll
// gives them when it creates one (its contract with kubectl reroll,
// repeated here on purpose).
const hashKeySelector = "app.kubernetes.io/name=reroll,app.kubernetes.io/component=hash-key"

// hashKeySecretsNamed returns the namespaces that hold a Secret named name
// with reroll's hash key labels: what kubectl reroll searches.
func hashKeySecretsNamed(ctx context.Context, name string) ([]string, error) {
	list, err := testEnv.client.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: hashKeySelector})
	if err != nil {
		return nil, err
	}
	var namespaces []string
	for _, s := range list.Items {
		if s.Name == name {
			namespaces = append(namespaces, s.Namespace)
		}
	}
	return namespaces, nil
}

// TestPluginFindsChartInstall runs kubectl reroll as a user would after
// installing the chart into a namespace of their choosing: without
// --controller-namespace, status finds that installation's hash key and
// says "in sync" (with the last roll) once reroll rolled a change, and
// "will roll" for a change made while reroll is stopped, for the consumer
// of the changed key only.
//
// The chart's Deployment cannot run reroll's image on this control plane,
// so reroll runs here as that installation: as the chart's ServiceAccount,
// with the chart's POD_NAMESPACE and the chart's default hash key Secret
// name. reroll creates that Secret itself, with the labels the plugin looks
// for, as it does in a cluster.
//
// It does not run in parallel: the plugin finds reroll as the one Secret of
// that name with those labels in the cluster, and every parallel test that
// starts reroll creates one in its own namespace, which the plugin rightly
// calls several installations. A user's cluster with one installation is
// the state this test needs, so it runs before the parallel tests start and
// first waits until the Secrets of earlier tests' namespaces are gone.
func TestPluginFindsChartInstall(t *testing.T) {
	ctx := context.Background()
	waitForUpTo(t, "no other reroll hash key Secret in the cluster", rolloutTimeout, func(ctx context.Context) (bool, error) {
		namespaces, err := hashKeySecretsNamed(ctx, "reroll-hash-key")
		return len(namespaces) == 0, err
	})
	home, ns := newNamespace(t), newNamespace(t)
	helmInstall(t, home, "reroll-"+home[len(home)-6:], "watchNamespace="+ns)
	create(t, configMap(ns, "cfg", map[string]string{"LOG_LEVEL": "info", "greeting": "hello"}),
		testDeployment(ns, "web", auto(), envKey("cfg", "LOG_LEVEL")),
		testDeployment(ns, "worker", auto(), envKey("cfg", "greeting")))

	tr, err := testEnv.client.CoreV1().ServiceAccounts(home).CreateToken(ctx, "reroll", tokenRequest(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The chart's arguments that matter here: leader election on, one
	// watched namespace. No bake, as in startReroll: web is then in sync
	// as soon as it rolled, not baking for the next 30 s.
	cmd := exec.Command(testEnv.controller, append([]string{
		"--kubeconfig=" + tokenKubeconfig(t, tr.Status.Token), "--leader-elect", "--namespace=" + ns,
		"--debounce=100ms", "--bake-time=0s", "--v=4"}, localServers()...)...)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+home)
	r := startRerollCommand(t, cmd)
	waitAdopted(t, ns, "web")
	waitAdopted(t, ns, "worker")
	assertNoForbidden(t, r)

	// What the plugin will find: the Secret reroll created in the release
	// namespace, and no other.
	if found, err := hashKeySecretsNamed(ctx, "reroll-hash-key"); err != nil || len(found) != 1 || found[0] != home {
		t.Fatalf("hash key Secrets with reroll's labels are in %q (%v), want only in the release namespace %s", found, err, home)
	}

	kc := testEnv.info.Kubeconfig
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["LOG_LEVEL"] = "debug" })
	waitReplicaSets(t, ns, "web", 2)
	waitEvent(t, ns, "web", "Rolled")
	out := plugin(t, kc, "", "status", "-n", ns)
	for name, want := range map[string]string{"web": "in sync", "worker": "in sync"} {
		if row := rowOf(out, "deployment/"+name); !strings.Contains(row, want) {
			t.Errorf("status of %s after reroll rolled: %q, want %s", name, row, want)
		}
	}
	if row := rowOf(out, "deployment/web"); !strings.Contains(row, "ago: ") {
		t.Errorf("status of web does not show its last roll: %q", row)
	}

	// A change while reroll is stopped: only the consumer of the changed
	// key will roll, which the plugin can only tell with reroll's key.
	r.stop()
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["greeting"] = "hi" })
	out = plugin(t, kc, "", "status", "-n", ns)
	for name, want := range map[string]string{"web": "in sync", "worker": "will roll"} {
		if row := rowOf(out, "deployment/"+name); !strings.Contains(row, want) {
			t.Errorf("status of %s while reroll is stopped: %q, want %s", name, row, want)
		}
	}
	if strings.Contains(out, "unknown") {
		t.Errorf("status says unknown:\n%s", out)
	}
}
