//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// Argo Rollouts as a built-in kind (--kinds=rollouts), with Argo's own CRD
// from its module. The tests write each Rollout's status as Argo's
// controller would (observedGeneration as a string, the phase), which is
// what reroll reads; building and running Argo's controller would not fit
// the suite's time budget.

// argoGVR is Argo Rollouts' resource.
var argoGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

// podTemplateObject returns a pod template, as an unstructured map, whose
// container reads every key of ConfigMap cfg.
func podTemplateObject(app, cfg string) map[string]any {
	return map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app": app}},
		"spec": map[string]any{"containers": []any{map[string]any{
			"name": "app", "image": "registry.example/app:1",
			"envFrom": []any{map[string]any{"configMapRef": map[string]any{"name": cfg}}},
		}}},
	}
}

// createArgoRollout creates a Rollout named name consuming ConfigMap cfg,
// with annotations, and gives it the status of a healthy rollout of its
// spec.
func createArgoRollout(t *testing.T, ns, name, cfg string, annotations map[string]any) {
	t.Helper()
	r := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": name, "namespace": ns, "annotations": annotations},
		"spec": map[string]any{
			"replicas": int64(1),
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": podTemplateObject(name, cfg),
			"strategy": map[string]any{"canary": map[string]any{"steps": []any{
				map[string]any{"setWeight": int64(20)}, map[string]any{"pause": map[string]any{}},
			}}},
		},
	}}
	if _, err := dynamicClient(t).Resource(argoGVR).Namespace(ns).Create(context.Background(), r, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setArgoPhase(t, ns, name, "Healthy")
}

// setArgoPhase writes a Rollout's status as Argo's controller would once it
// has seen its current spec: a string observedGeneration, and phase.
func setArgoPhase(t *testing.T, ns, name, phase string) {
	t.Helper()
	setStatus(t, argoGVR, ns, name, func(generation int64) map[string]any {
		return map[string]any{"observedGeneration": generationString(generation), "phase": phase}
	})
}

// argoConfigHash returns the config hash on a Rollout's pod template.
func argoConfigHash(t *testing.T, ctx context.Context, ns, name string) (string, error) {
	return nestedString(t, ctx, argoGVR, ns, name, "spec", "template", "metadata", "annotations", annotationConfigHash)
}

// waitArgoAdopted waits until reroll recorded a baseline on each Rollout.
func waitArgoAdopted(t *testing.T, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		waitFor(t, "adoption of Rollout "+name, func(ctx context.Context) (bool, error) {
			v, err := nestedString(t, ctx, argoGVR, ns, name, "metadata", "annotations", annotationConsumed)
			return v != "", err
		})
	}
}

// Waves of Rollouts wait on Argo's status: the canary's new revision must
// reach Healthy (its steps and analysis passed) before the next wave rolls,
// and a canary that goes Degraded halts the change until it recovers.
func TestArgoRolloutsWavesAndHalt(t *testing.T) {
	t.Parallel()
	installModuleCRD(t, argoRolloutCRD)
	ns := newNamespace(t)
	cm := configMap(ns, "cfg", map[string]string{"k": "1"})
	cm.Annotations = map[string]string{"reroll.dev/waves": "1,100%"}
	create(t, cm)
	names := []string{"a", "b", "c"}
	for _, n := range names {
		createArgoRollout(t, ns, n, "cfg", map[string]any{annotationAuto: "true"})
	}
	r := startReroll(t, ns, "--kinds=rollouts", "--discovery-recheck-period=1s")
	waitArgoAdopted(t, ns, names...)

	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitFor(t, "the canary a to roll", func(ctx context.Context) (bool, error) {
		v, err := argoConfigHash(t, ctx, ns, "a")
		return v != "", err
	})
	// Argo sees the new revision and pauses on its canary step: still
	// rolling, so the next wave waits.
	setArgoPhase(t, ns, "a", "Paused")
	for _, n := range []string{"b", "c"} {
		waitEvent(t, ns, n, "RolloutHeld")
	}
	// The canary fails: the change halts.
	setArgoPhase(t, ns, "a", "Degraded")
	for _, n := range []string{"b", "c"} {
		waitEvent(t, ns, n, "RolloutHalted")
	}
	for _, n := range []string{"b", "c"} {
		if v, err := argoConfigHash(t, context.Background(), ns, n); err != nil || v != "" {
			t.Fatalf("Rollout %s rolled (%q, %v) while its change was held, then halted", n, v, err)
		}
	}
	// The canary recovers (a fix, or a retry that passes): the rest roll.
	setArgoPhase(t, ns, "a", "Healthy")
	for _, n := range []string{"b", "c"} {
		waitFor(t, "Rollout "+n+" to roll after the canary recovered", func(ctx context.Context) (bool, error) {
			v, err := argoConfigHash(t, ctx, ns, n)
			return v != "", err
		})
	}
	for _, n := range names {
		// The Rolled log line follows the PATCH, which the test sees first.
		r.waitLog(1, `"Rolled"`, `workload="`+ns+"/"+n+`"`)
		if got := r.countLog(`"Rolled"`, `workload="`+ns+"/"+n+`"`); got != 1 {
			t.Errorf("Rollout %s rolled %d times, want once", n, got)
		}
	}
}

// reroll.dev/strategy: restart (and Reloader's rollout-strategy: restart)
// rolls a Rollout by spec.restartAt, once, leaving its template, and so its
// revision, alone; a restart of reroll does not restart it again.
func TestArgoRolloutsRestartStrategy(t *testing.T) {
	t.Parallel()
	installModuleCRD(t, argoRolloutCRD)
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}))
	createArgoRollout(t, ns, "ours", "cfg", map[string]any{annotationAuto: "true", "reroll.dev/strategy": "restart"})
	createArgoRollout(t, ns, "reloaders", "cfg", map[string]any{"reloader.stakater.com/auto": "true", "reloader.stakater.com/rollout-strategy": "restart"})
	createArgoRollout(t, ns, "bad", "cfg", map[string]any{annotationAuto: "true", "reroll.dev/strategy": "bounce"})
	r := startReroll(t, ns, "--kinds=rollouts", "--discovery-recheck-period=1s", "--reloader-annotations")
	waitArgoAdopted(t, ns, "ours", "reloaders")
	waitEvent(t, ns, "bad", "InvalidAnnotation")

	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	restartAt := map[string]string{}
	for _, n := range []string{"ours", "reloaders"} {
		waitFor(t, "Rollout "+n+" to restart", func(ctx context.Context) (bool, error) {
			v, err := nestedString(t, ctx, argoGVR, ns, n, "spec", "restartAt")
			restartAt[n] = v
			return v != "", err
		})
		if v, err := argoConfigHash(t, context.Background(), ns, n); err != nil || v != "" {
			t.Errorf("Rollout %s: a restart changed its template (%q, %v)", n, v, err)
		}
	}
	r.stop()
	r2 := startReroll(t, ns, "--kinds=rollouts", "--discovery-recheck-period=1s", "--reloader-annotations")
	r2.waitLog(1, "Watching extra kind", `kind="Rollout.argoproj.io"`)
	// A sync after the restart finds nothing to do: wait for the second
	// reroll's first look at both, then check nothing was written.
	for _, n := range []string{"ours", "reloaders"} {
		r2.waitLog(1, "Synced", `workload="Rollout.argoproj.io `+ns+"/"+n+`"`)
		if v, _ := nestedString(t, context.Background(), argoGVR, ns, n, "spec", "restartAt"); v != restartAt[n] {
			t.Errorf("Rollout %s restarted again after reroll's restart: %q, was %q", n, v, restartAt[n])
		}
	}
	events := strings.Join(eventReasons(t, ns, "ours"), ",")
	if strings.Count(events, "Rolled") != 1 {
		t.Errorf("Events of ours: %s, want one Rolled", events)
	}
	if slices.Contains(eventReasons(t, ns, "bad"), "Rolled") {
		t.Error("a Rollout with an unknown strategy rolled")
	}
}

// A Rollout that runs a Deployment's template (spec.workloadRef) consumes
// what that template references, and rolls once, by spec.restartAt: reroll
// never writes the referenced Deployment. A workloadRef to a Deployment
// that does not exist is a Warning, and the Rollout is adopted once the
// Deployment appears.
func TestArgoRolloutsWorkloadRef(t *testing.T) {
	t.Parallel()
	installModuleCRD(t, argoRolloutCRD)
	ns := newNamespace(t)
	ctx := context.Background()
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}))
	template := testDeployment(ns, "template", nil, envFrom("cfg"))
	template.Spec.Replicas = ptr.To[int32](0)
	create(t, template)
	for name, ref := range map[string]string{"ref": "template", "dangling": "later"} {
		r := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
			"metadata": map[string]any{"name": name, "namespace": ns, "annotations": map[string]any{annotationAuto: "true"}},
			"spec": map[string]any{"replicas": int64(1),
				"workloadRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": ref}},
		}}
		if _, err := dynamicClient(t).Resource(argoGVR).Namespace(ns).Create(ctx, r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		setArgoPhase(t, ns, name, "Healthy")
	}
	r := startReroll(t, ns, "--kinds=deployments,rollouts", "--discovery-recheck-period=1s")
	waitArgoAdopted(t, ns, "ref")
	waitEvent(t, ns, "dangling", "InvalidTemplate")
	later := testDeployment(ns, "later", nil, envFrom("cfg"))
	later.Spec.Replicas = ptr.To[int32](0)
	create(t, later)
	waitArgoAdopted(t, ns, "dangling")

	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	for _, n := range []string{"ref", "dangling"} {
		waitFor(t, "Rollout "+n+" to restart", func(ctx context.Context) (bool, error) {
			v, err := nestedString(t, ctx, argoGVR, ns, n, "spec", "restartAt")
			return v != "", err
		})
	}
	if d := getDeployment(t, ns, "template"); d.Spec.Template.Annotations[annotationConfigHash] != "" || d.Annotations[annotationConsumed] != "" {
		t.Errorf("reroll wrote the referenced Deployment: %v %v", d.Annotations, d.Spec.Template.Annotations)
	}
	r.waitLog(1, `"Rolled"`, `workload="`+ns+`/ref"`)
	if got := r.countLog(`"Rolled"`, `workload="`+ns+`/ref"`); got != 1 {
		t.Errorf("Rollout ref rolled %d times, want once", got)
	}
}
