//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A ConfigMap whose rollout window opens a few seconds after its change
// rolls none of its consumers before the opening, with a restart of reroll
// in between, and each once after it.
func TestRolloutWindowOpensAfterTheChange(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	// The window starts at the first whole minute at least 15 s away.
	opens := time.Now().UTC().Add(15 * time.Second).Truncate(time.Minute).Add(time.Minute)
	window := fmt.Sprintf("%s %s-%s UTC", opens.Weekday().String()[:3], opens.Format("15:04"), opens.Add(30*time.Minute).Format("15:04"))
	if opens.Add(30*time.Minute).Day() != opens.Day() {
		window = fmt.Sprintf("%s %s-00:00 UTC", opens.Weekday().String()[:3], opens.Format("15:04")) // overnight: runs past midnight
	}
	cm := configMap(ns, "cfg", map[string]string{"k": "1"})
	cm.Annotations = map[string]string{"reroll.dev/rollout-window": window}
	create(t, cm, testDeployment(ns, "a", auto(), envFrom("cfg")), testDeployment(ns, "b", auto(), envFrom("cfg")))
	r := startReroll(t, ns, "--kinds=deployments")
	waitAdopted(t, ns, "a")
	waitAdopted(t, ns, "b")
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	for _, n := range []string{"a", "b"} {
		waitEvent(t, ns, n, "RolloutHeld")
	}
	r.stop()
	r2 := startReroll(t, ns, "--kinds=deployments")
	r2.waitLog(2, "Roll held", `reason="window"`)
	if time.Now().After(opens) {
		t.Skipf("the machine took past the opening (%s) to get here; nothing to check", opens.Format(time.RFC3339))
	}
	for _, n := range []string{"a", "b"} {
		if d := getDeployment(t, ns, n); d.Spec.Template.Annotations[annotationConfigHash] != "" {
			t.Fatalf("%s rolled before its window opened at %s", n, opens.Format(time.RFC3339))
		}
	}
	waitForUpTo(t, "both to roll once the window opens", time.Until(opens)+waitTimeout, func(ctx context.Context) (bool, error) {
		return r2.countLog(`"Rolled"`) == 2, nil
	})
	if rolledAt := time.Now(); rolledAt.Before(opens) {
		t.Errorf("rolled at %s, before the opening %s", rolledAt.Format(time.RFC3339), opens.Format(time.RFC3339))
	}
	for _, n := range []string{"a", "b"} {
		lookAgain(t, r2, ns, n)
		if got := r.countLog(`"Rolled"`) + r2.countLog(`"Rolled"`, `workload="`+ns+"/"+n+`"`); got != 1 {
			t.Errorf("%s rolled %d times, want once", n, got)
		}
	}
}
