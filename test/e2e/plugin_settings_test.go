//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPluginStatusPredictsRollsAfterRestart runs reroll with
// --reload-on-delete and --reloader-annotations, and a workload that names
// its ConfigMaps by a Reloader regex; changes are made while reroll is
// stopped. `kubectl reroll status -A`, given no controller flag, names as
// "will roll" exactly the workloads that roll once reroll starts again:
// the plugin decides with the settings reroll published.
func TestPluginStatusPredictsRollsAfterRestart(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	for _, name := range []string{"app-config", "app-extra", "doomed", "other", "steady"} {
		create(t, configMap(ns, name, map[string]string{"k": "1"}))
	}
	regex := testDeployment(ns, "regex", map[string]string{"configmap.reloader.stakater.com/reload": "app-.*"}, nil)
	create(t, regex,
		testDeployment(ns, "by-delete", auto(), envFrom("doomed")),
		testDeployment(ns, "reloader-auto", map[string]string{"reloader.stakater.com/auto": "true"}, envFrom("other")),
		testDeployment(ns, "steady", auto(), envFrom("steady")))
	b := newBarrier(t, ns)
	flags := []string{"--reload-on-delete", "--reloader-annotations"}
	r := startReroll(t, ns, flags...)
	for _, n := range []string{"regex", "by-delete", "reloader-auto", "steady", "barrier"} {
		waitAdopted(t, ns, n)
	}
	r.stop()
	rolls := watchNamespaceRolls(t, ns)

	updateConfigMap(t, ns, "app-extra", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	updateConfigMap(t, ns, "other", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	if err := testEnv.client.CoreV1().ConfigMaps(ns).Delete(context.Background(), "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	predicted := willRoll(t, ns)

	startReroll(t, ns, flags...)
	rolls.waitTotal("", len(predicted))
	b.wait()
	var rolled []string
	for _, name := range rolls.rolledNames("") {
		if name != "barrier" {
			rolled = append(rolled, name)
		}
	}
	if !slices.Equal(predicted, rolled) || len(rolled) != 3 {
		t.Errorf("status said %q will roll; once reroll started again, %q rolled (want regex, by-delete and reloader-auto)", predicted, rolled)
	}
}

// willRoll returns, sorted, the workloads of ns that `kubectl reroll
// status -A -o json` says will roll, with no controller flag: only where to
// find reroll.
func willRoll(t *testing.T, ns string) []string {
	t.Helper()
	cmd := exec.Command(os.Getenv("REROLL_E2E_PLUGIN"), "status", "-A", "-o", "json", "--controller-namespace="+ns, "--kubeconfig="+testEnv.info.Kubeconfig)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl-reroll status: %v\n%s", err, stderr.String())
	}
	t.Logf("$ kubectl reroll status -A -o json\nstderr: %s", stderr.String())
	var rows []struct {
		Namespace, Name, State string
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var names []string
	for _, r := range rows {
		if r.Namespace == ns && r.State == "will roll" {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	return names
}
