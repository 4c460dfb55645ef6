//go:build e2e

package e2e

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// knativeGVR is Knative Serving's Service.
var knativeGVR = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}

// setKnativeReady writes a Service's status as Knative's controller would
// for its current generation: an integer observedGeneration and a Ready
// condition.
func setKnativeReady(t *testing.T, ns, name, ready string) {
	t.Helper()
	setStatus(t, knativeGVR, ns, name, func(generation int64) map[string]any {
		return map[string]any{"observedGeneration": generation, "conditions": []any{
			map[string]any{"type": "Ready", "status": ready, "lastTransitionTime": "2026-12-01T00:00:00Z"},
		}}
	})
}

// A custom kind added with --extra-kinds is judged by the common status
// conventions: a Knative Service rolls, and the next wave waits until its
// Ready condition is True for the generation reroll's roll made.
func TestKnativeServiceWavesWaitOnReady(t *testing.T) {
	t.Parallel()
	installModuleCRD(t, knativeServiceCRD)
	ns := newNamespace(t)
	cm := configMap(ns, "cfg", map[string]string{"k": "1"})
	cm.Annotations = map[string]string{"reroll.dev/waves": "1,100%"}
	create(t, cm)
	for _, n := range []string{"a", "b"} {
		svc := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "serving.knative.dev/v1", "kind": "Service",
			"metadata": map[string]any{"name": n, "namespace": ns, "annotations": map[string]any{annotationAuto: "true"}},
			"spec":     map[string]any{"template": podTemplateObject(n, "cfg")},
		}}
		if _, err := dynamicClient(t).Resource(knativeGVR).Namespace(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		setKnativeReady(t, ns, n, "True")
	}
	r := startReroll(t, ns, "--kinds=deployments", "--extra-kinds=services.serving.knative.dev", "--discovery-recheck-period=1s")
	hash := func(ctx context.Context, name string) (string, error) {
		return nestedString(t, ctx, knativeGVR, ns, name, "spec", "template", "metadata", "annotations", annotationConfigHash)
	}
	for _, n := range []string{"a", "b"} {
		waitFor(t, "adoption of Service "+n, func(ctx context.Context) (bool, error) {
			v, err := nestedString(t, ctx, knativeGVR, ns, n, "metadata", "annotations", annotationConsumed)
			return v != "", err
		})
	}
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitFor(t, "Service a to roll", func(ctx context.Context) (bool, error) {
		v, err := hash(ctx, "a")
		return v != "", err
	})
	// Knative has seen the new generation, but its revision is not ready.
	waitEvent(t, ns, "b", "RolloutHeld")
	looks := func() int {
		return r.countLog("Roll still held", `workload="`+ns+`/b"`) + r.countLog(`"Rolled"`, `workload="`+ns+`/b"`)
	}
	before := looks()
	setKnativeReady(t, ns, "a", "False")
	// Touch b after that status, with an annotation reroll reads (the
	// default wave priority), so that reroll looks at b again once its cache
	// holds a's status (one informer delivers both in order).
	touch := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"annotations": map[string]any{"reroll.dev/wave-priority": "0"}}}}
	body, _ := touch.MarshalJSON()
	if _, err := dynamicClient(t).Resource(knativeGVR).Namespace(ns).Patch(context.Background(), "b", types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reroll to look at b again", func(context.Context) (bool, error) {
		return looks() > before, nil
	})
	if v, err := hash(context.Background(), "b"); err != nil || v != "" {
		t.Fatalf("Service b rolled (%q, %v) before a was Ready", v, err)
	}
	setKnativeReady(t, ns, "a", "True")
	waitFor(t, "Service b to roll once a is Ready", func(ctx context.Context) (bool, error) {
		v, err := hash(ctx, "b")
		return v != "", err
	})
	// reroll logs the roll just after its PATCH returns, which the test
	// can see first.
	r.waitLog(1, `"Rolled"`, `workload="`+ns+`/b"`)
	if got := r.countLog(`"Rolled"`, `workload="`+ns+`/b"`); got != 1 {
		t.Errorf("Service b rolled %d times, want once", got)
	}
}
