//go:build e2e

package e2e

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// lookAgain makes reroll sync a Deployment once more (an annotation reroll
// reads, set to its default) and waits until it did.
func lookAgain(t *testing.T, r *rerollProcess, ns, name string) {
	t.Helper()
	before := r.countLog("Synced", `workload="Deployment `+ns+"/"+name+`"`)
	touch := []byte(`{"metadata":{"annotations":{"reroll.dev/wave-priority":"0"}}}`)
	if _, err := testEnv.client.AppsV1().Deployments(ns).Patch(context.Background(), name, types.MergePatchType, touch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reroll to look at "+name+" again", func(context.Context) (bool, error) {
		return r.countLog("Synced", `workload="Deployment `+ns+"/"+name+`"`) > before, nil
	})
}

// --resources-to-ignore=secrets (Reloader's ignoreSecrets): Secrets are
// neither watched nor cached, and a Secret change rolls nothing, while a
// ConfigMap change still rolls.
func TestResourcesToIgnoreSecrets(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}), secret(ns, "sec", map[string]string{"p": "1"}),
		testDeployment(ns, "web", auto(), both(envFrom("cfg"), secretVolume("sec"))))
	r := startReroll(t, ns, "--resources-to-ignore=secrets", "--kinds=deployments")
	waitAdopted(t, ns, "web")
	updateSecret(t, ns, "sec", func(s *corev1.Secret) { s.Data["p"] = []byte("2") })
	lookAgain(t, r, ns, "web")
	if n := r.countLog(`"Rolled"`); n != 0 {
		t.Fatalf("a Secret change rolled %d times with Secrets ignored", n)
	}
	if n := r.countLog("Listing and watching", `type="*v1.Secret"`); n != 0 {
		t.Errorf("Secrets are watched (%d log lines) while ignored", n)
	}
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitEvent(t, ns, "web", "Rolled")
}

// --reload-on-delete: deleting a consumed ConfigMap rolls its consumers
// once (with a Warning, as new pods need it back to start).
func TestReloadOnDeleteRollsOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	r := startReroll(t, ns, "--reload-on-delete", "--kinds=deployments")
	waitAdopted(t, ns, "web")
	if err := testEnv.client.CoreV1().ConfigMaps(ns).Delete(context.Background(), "cfg", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ns, "web", "Rolled")
	waitEvent(t, ns, "web", "MissingReference")
	lookAgain(t, r, ns, "web")
	if n := r.countLog(`"Rolled"`); n != 1 {
		t.Errorf("the delete rolled %d times, want once", n)
	}
}

// A regular expression in Reloader's reload annotation (--reloader-annotations)
// consumes the objects of the namespace whose names it matches: a change of
// one rolls the matching consumer, and not the others.
func TestReloaderRegexReload(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "app-config-1", map[string]string{"k": "1"}),
		testDeployment(ns, "matching", map[string]string{"configmap.reloader.stakater.com/reload": "app-config-.*"}, nil),
		testDeployment(ns, "elsewhere", map[string]string{"configmap.reloader.stakater.com/reload": "other-.*"}, nil))
	r := startReroll(t, ns, "--reloader-annotations", "--kinds=deployments")
	waitAdopted(t, ns, "matching")
	waitAdopted(t, ns, "elsewhere")
	updateConfigMap(t, ns, "app-config-1", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitEvent(t, ns, "matching", "Rolled")
	lookAgain(t, r, ns, "elsewhere")
	if n := r.countLog(`"Rolled"`, `workload="`+ns+`/elsewhere"`); n != 0 {
		t.Errorf("a workload whose pattern does not match rolled %d times", n)
	}
	if n := r.countLog(`"Rolled"`, `workload="`+ns+`/matching"`); n != 1 {
		t.Errorf("the matching workload rolled %d times, want once", n)
	}
}
