//go:build e2e

package e2e

import (
	"testing"
)

// A workload that names a ConfigMap that does not exist yet gets a
// MissingReference Warning ("not rolling until it does"); when the
// ConfigMap is created, the workload rolls once, as the Warning says and as
// Reloader's reload-on-create does, for reroll's annotation and Reloader's.
func TestNamedObjectCreatedLaterRollsOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, testDeployment(ns, "ours", map[string]string{"reroll.dev/configmaps": "later"}, nil),
		testDeployment(ns, "reloaders", map[string]string{"configmap.reloader.stakater.com/reload": "later"}, nil))
	r := startReroll(t, ns, "--reloader-annotations", "--kinds=deployments")
	for _, n := range []string{"ours", "reloaders"} {
		waitEvent(t, ns, n, "MissingReference")
		waitAdopted(t, ns, n)
	}
	create(t, configMap(ns, "later", map[string]string{"k": "1"}))
	for _, n := range []string{"ours", "reloaders"} {
		waitEvent(t, ns, n, "Rolled")
		lookAgain(t, r, ns, n)
		if got := r.countLog(`"Rolled"`, `workload="`+ns+"/"+n+`"`); got != 1 {
			t.Errorf("%s rolled %d times, want once", n, got)
		}
	}
}
