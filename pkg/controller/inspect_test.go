package controller

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/reroll/reroll/pkg/plan"
	"github.com/reroll/reroll/pkg/plan/plantest"
)

// The inspector and the controller must never disagree: the same fixtures
// go through the controller's sync and through the inspector's impact (of
// the change, before it is made) and status (after it), and the rolls must
// be the same.
func TestInspectorAgreesWithController(t *testing.T) {
	paused := map[string]string{plan.AnnotationAuto: "true", plan.AnnotationPaused: "true"}
	workloads := []*appsv1.Deployment{
		deployment("reads-a", auto(), func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cfg", "a", false)}
		}),
		deployment("reads-b", auto(), func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{plantest.ConfigMapKeyEnv("B", "cfg", "b", false)}
		}),
		deployment("reads-all", auto(), envFromConfigMap("cfg")),
		deployment("init-reads-a", auto(), func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "init", Env: []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cfg", "a", false)}}}
		}),
		deployment("not-opted-in", nil, envFromConfigMap("cfg")),
		deployment("paused", paused, envFromConfigMap("cfg")),
		deployment("named", map[string]string{plan.AnnotationConfigMaps: "cfg"}, nil),
	}
	changes := []struct {
		name string
		data map[string]string
	}{
		{"key a", map[string]string{"a": "2", "b": "1"}},
		{"key b", map[string]string{"a": "1", "b": "2"}},
		{"new key", map[string]string{"a": "1", "b": "1", "c": "1"}},
		{"nothing", map[string]string{"a": "1", "b": "1"}},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			before := configMap("cfg", map[string]string{"a": "1", "b": "1"})
			f := newFixture(t, before)
			ctx := f.start()
			in := NewInspector(InspectSettings{HashKey: &f.opts.HashKey})
			mustAdd(t, in, before)
			var adopted []*appsv1.Deployment
			for _, d := range workloads {
				d := f.adopted(d)
				f.seed(d)
				mustAdd(t, in, d)
				adopted = append(adopted, d)
			}
			after := configMap("cfg", ch.data)
			rows, err := in.Impact("ConfigMap", testNamespace, "cfg", after)
			if err != nil {
				t.Fatal(err)
			}
			var predicted []string
			for _, r := range rows {
				if r.Verdict == "WOULD ROLL" {
					predicted = append(predicted, r.Name)
				}
			}

			f.seed(after)
			f.writes()
			var rolled []string
			for _, d := range workloads {
				f.sync(ctx, d.Name)
				for _, w := range f.writes() {
					if strings.Contains(w.body, plan.AnnotationConfigHash) {
						rolled = append(rolled, w.name)
					}
				}
			}
			slices.Sort(predicted)
			slices.Sort(rolled)
			if !slices.Equal(predicted, rolled) {
				t.Errorf("impact predicted %q, the controller rolled %q", predicted, rolled)
			}

			// After the change, status says "will roll" for exactly those.
			after2 := NewInspector(InspectSettings{HashKey: &f.opts.HashKey})
			mustAdd(t, after2, after)
			for _, d := range adopted {
				mustAdd(t, after2, d)
			}
			var willRoll []string
			for _, s := range after2.Status() {
				if s.State == StateWillRoll {
					willRoll = append(willRoll, s.Name)
				}
			}
			slices.Sort(willRoll)
			if !slices.Equal(willRoll, rolled) {
				t.Errorf("status says %q will roll, the controller rolled %q", willRoll, rolled)
			}
		})
	}
}

// mustAdd adds obj to the inspector.
func mustAdd(t *testing.T, in *Inspector, obj runtime.Object) {
	t.Helper()
	if err := in.Add(obj); err != nil {
		t.Fatal(err)
	}
}

// A paused workload is held; the paused state and reasons read as the
// controller's hold says; waves are numbered in the controller's order.
// The workloads are adopted: the controller rolls a consumer not adopted
// yet against its baseline, outside the waves, and so does the plugin.
func TestInspectorHoldsAndWaves(t *testing.T) {
	cfg := configMap("cfg", map[string]string{"a": "1"})
	f := newFixture(t, cfg)
	f.start()
	key := f.opts.HashKey
	in := NewInspector(InspectSettings{HashKey: &key})
	mustAdd(t, in, cfg)
	for i, n := range []string{"c", "a", "b", "first"} {
		a := auto()
		if n == "first" {
			a[plan.AnnotationWavePriority] = "0"
		} else {
			a[plan.AnnotationWavePriority] = "1"
		}
		if i == 0 {
			a[plan.AnnotationPaused] = "true"
		}
		d := f.adopted(deployment(n, a, envFromConfigMap("cfg")))
		mustAdd(t, in, d)
	}
	next := configMap("cfg", map[string]string{"a": "2"})
	next.Annotations = map[string]string{plan.AnnotationWaves: "1,100%"}
	rows, err := in.Impact("ConfigMap", testNamespace, "cfg", next)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.Name] = r.Verdict + " " + strings.Repeat("w", r.Wave)
		if r.Name == "c" && !strings.HasPrefix(r.Reason, "held (paused)") {
			t.Errorf("paused workload's reason %q", r.Reason)
		}
	}
	want := map[string]string{"first": "WOULD ROLL w", "a": "WOULD ROLL ww", "b": "WOULD ROLL ww", "c": "no roll "}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: %q, want %q", n, got[n], w)
		}
	}
}

// The plugin shows a roll held by rollout windows, and when they open.
func TestInspectorRolloutWindow(t *testing.T) {
	key := testHashKey(t, 7)
	in := NewInspector(InspectSettings{HashKey: &key})
	cfg := configMap("cfg", map[string]string{"a": "2"})
	cfg.Annotations = map[string]string{plan.AnnotationRolloutWindow: "Tue 00:00-01:00 UTC"}
	mustAdd(t, in, cfg)
	old := configMap("cfg", map[string]string{"a": "1"})
	d := deployment("web", auto(), envFromConfigMap("cfg"))
	d.Annotations[plan.AnnotationRolloutWindow] = "Mon 00:00-01:00 UTC"
	// Recorded against the old content, so that the status is a roll.
	recorder := NewInspector(InspectSettings{HashKey: &key})
	mustAdd(t, recorder, old)
	mustAdd(t, recorder, d)
	e, _ := recorder.Explain("Deployment", testNamespace, "web")
	d.Annotations[plan.AnnotationConsumed] = e.CurrentState
	mustAdd(t, in, d)
	s := in.Status()
	if len(s) != 1 || s[0].State != StateHeld || !strings.Contains(s[0].Reason, "window: the rollout windows of the workload and ConfigMap/cfg are never open together") {
		t.Errorf("status %+v, want held by its windows", s)
	}
}
