//go:build e2e

package e2e

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Reloader's annotations, as a cluster that ran stakater/Reloader has them.
const (
	reloaderAuto           = "reloader.stakater.com/auto"
	reloaderConfigMapAuto  = "configmap.reloader.stakater.com/auto"
	reloaderConfigMapNamed = "configmap.reloader.stakater.com/reload"
	reloaderSearch         = "reloader.stakater.com/search"
	reloaderMatch          = "reloader.stakater.com/match"
	reloaderIgnore         = "reloader.stakater.com/ignore"
	reloaderPausePeriod    = "deployment.reloader.stakater.com/pause-period"
	reloaderLastReloaded   = "reloader.stakater.com/last-reloaded-from"
)

// TestReloaderAnnotationForms: with --reloader-annotations, each form of
// Reloader's annotations rolls, or does not, as Reloader documents (and
// reroll's key granularity keeps). Each Deployment consumes its own
// ConfigMap (and Secret) so the forms cannot mix.
func TestReloaderAnnotationForms(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	type form struct {
		name        string
		annotations map[string]string
		cmAnnot     map[string]string
		reference   bool   // the pod references its ConfigMap
		change      string // "cm" or "secret"
		rolls       bool
	}
	forms := []form{
		{"auto", map[string]string{reloaderAuto: "true"}, nil, true, "cm", true},
		{"typed-auto-other-type", map[string]string{reloaderConfigMapAuto: "true"}, nil, true, "secret", false},
		{"named", map[string]string{reloaderConfigMapNamed: "named-cm"}, nil, false, "cm", true},
		{"search-match", map[string]string{reloaderSearch: "true"}, map[string]string{reloaderMatch: "true"}, true, "cm", true},
		{"search-nomatch", map[string]string{reloaderSearch: "true"}, nil, true, "cm", false},
		{"ignored", map[string]string{reloaderAuto: "true"}, map[string]string{reloaderIgnore: "true"}, true, "cm", false},
		{"pause-period", map[string]string{reloaderAuto: "true", reloaderPausePeriod: "3s"}, nil, true, "cm", true},
	}
	for _, f := range forms {
		cm := configMap(ns, f.name+"-cm", map[string]string{"k": "0"})
		cm.Annotations = f.cmAnnot
		mutate := both(secretVolume(f.name + "-secret"))
		if f.reference {
			mutate = both(envFrom(f.name+"-cm"), secretVolume(f.name+"-secret"))
		}
		create(t, cm, secret(ns, f.name+"-secret", map[string]string{"k": "0"}), testDeployment(ns, f.name, f.annotations, mutate))
	}
	b := newBarrier(t, ns)
	r := startReroll(t, ns, "--reloader-annotations")
	for _, f := range forms {
		waitAdopted(t, ns, f.name)
	}
	for _, f := range forms {
		if f.change == "cm" {
			updateConfigMap(t, ns, f.name+"-cm", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
		} else {
			updateSecret(t, ns, f.name+"-secret", func(s *corev1.Secret) { s.Data["k"] = []byte("1") })
		}
	}
	for _, f := range forms {
		if f.rolls {
			waitReplicaSets(t, ns, f.name, 2)
		}
	}
	b.wait()
	for _, f := range forms {
		want := 1
		if f.rolls {
			want = 2
		}
		if n := replicaSets(t, ns, f.name); n != want {
			t.Errorf("%s: %d ReplicaSets, want %d", f.name, n, want)
		}
	}
	if c := r.countLog(`"Rolled"`, fmt.Sprintf(`workload="%s/pause-period"`, ns)); c != 1 {
		t.Errorf("pause-period rolled %d times", c)
	}
}

// TestMigrationFromReloader: 100 Deployments as Reloader's env-vars
// strategy leaves them (a STAKATER_* variable in the pod template) and with
// reloader.stakater.com/auto, some also with the annotations strategy's
// last-reloaded-from, are adopted with no roll; a later change rolls exactly
// its consumers, once each.
func TestMigrationFromReloader(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "a", map[string]string{"k": "0"}), configMap(ns, "b", map[string]string{"k": "0"}))
	names := consumerNames("m", 100)
	for i, name := range names {
		cm := "a"
		if i%2 == 1 {
			cm = "b"
		}
		d := testDeployment(ns, name, map[string]string{reloaderAuto: "true"}, envFrom(cm))
		d.Spec.Replicas = new(int32)
		d.Spec.Template.Spec.Containers[0].Env = append(d.Spec.Template.Spec.Containers[0].Env,
			corev1.EnvVar{Name: "STAKATER_" + map[string]string{"a": "A", "b": "B"}[cm] + "_CONFIGMAP", Value: "5d41402abc4b2a76b9719d911017c592"})
		if i%4 == 0 {
			d.Spec.Template.Annotations = map[string]string{reloaderLastReloaded: `{"type":"CONFIGMAP","name":"` + cm + `","hash":"5d41402a"}`}
		}
		create(t, d)
	}
	b := newBarrier(t, ns)
	startReroll(t, ns, "--reloader-annotations")
	waitAllAdopted(t, ns, names)
	b.wait()
	for _, name := range names {
		if n := replicaSets(t, ns, name); n != 1 {
			t.Fatalf("%s has %d ReplicaSets after adoption, want 1: adoption rolled it", name, n)
		}
	}
	rolls := watchNamespaceRolls(t, ns)
	updateConfigMap(t, ns, "a", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	rolls.waitTotal("m-", 50)
	b.wait()
	for i, name := range names {
		want := 1 - i%2 // the consumers of "a" roll once; those of "b" not at all
		if n := rolls.count(name); n != want {
			t.Errorf("%s rolled %d times, want %d", name, n, want)
		}
	}
	d := getDeployment(t, ns, names[0])
	if d.Spec.Template.Annotations[reloaderLastReloaded] == "" || d.Spec.Template.Spec.Containers[0].Env[0].Name != "STAKATER_A_CONFIGMAP" {
		t.Errorf("Reloader's leftovers were touched: %v %v", d.Spec.Template.Annotations, d.Spec.Template.Spec.Containers[0].Env)
	}
}
