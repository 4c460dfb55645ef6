//go:build e2e

package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// kubectl reroll pause, resume and release, run as a user would: a paused
// workload holds its roll until resumed, and a released change of a paused
// ConfigMap rolls its consumer once; --dry-run writes nothing.
func TestPluginPauseResumeRelease(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	kc := testEnv.info.Kubeconfig
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}), configMap(ns, "shared", map[string]string{"k": "1"}),
		testDeployment(ns, "web", auto(), envFrom("cfg")), testDeployment(ns, "api", auto(), envFrom("shared")))
	r := startReroll(t, ns, "--kinds=deployments")
	waitAdopted(t, ns, "web")
	waitAdopted(t, ns, "api")

	// pause and resume a workload
	if out := plugin(t, kc, "", "pause", "deployment/web", "-n", ns, "--dry-run"); !strings.Contains(out, "would have set reroll.dev/paused=true") {
		t.Fatalf("dry run said %q", out)
	}
	if d := getDeployment(t, ns, "web"); d.Annotations["reroll.dev/paused"] != "" {
		t.Fatal("a dry run wrote")
	}
	plugin(t, kc, "", "pause", "deployment/web", "-n", ns)
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitEvent(t, ns, "web", "RolloutHeld")
	plugin(t, kc, "", "resume", "deployment/web", "-n", ns)
	waitEvent(t, ns, "web", "Rolled")

	// release one change of a paused ConfigMap
	plugin(t, kc, "", "pause", "configmap/shared", "-n", ns)
	updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitEvent(t, ns, "api", "RolloutHeld")
	out := plugin(t, kc, "", "release", "configmap/shared", "-n", ns, "--controller-namespace="+ns)
	if !strings.Contains(out, "set reroll.dev/release=") {
		t.Fatalf("release said %q", out)
	}
	waitEvent(t, ns, "api", "Rolled")
	lookAgain(t, r, ns, "api")
	lookAgain(t, r, ns, "web")
	for _, n := range []string{"web", "api"} {
		if got := r.countLog(`"Rolled"`, `workload="`+ns+"/"+n+`"`); got != 1 {
			t.Errorf("%s rolled %d times, want once", n, got)
		}
	}
}
