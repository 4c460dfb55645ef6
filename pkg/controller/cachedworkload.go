package controller

import (
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/reroll/reroll/pkg/plan"
)

// How reroll caches a workload of any kind: only what its decisions read.

// cachedWorkload is how reroll caches a workload of every kind, built-in or
// custom: its identity, versions and reroll's annotations, and of its pod
// template only the list of its ConfigMap and Secret references (see
// WalkPodSpec), and of its status the facts its rollout state is derived
// from (see RolloutStatus). The rest of a real workload (images, probes, resources,
// literal env values, status) is most of its size, and reroll never reads
// it, so caching it would make reroll's memory grow with spec sizes.
//
// The informers' caches therefore hold *cachedWorkload, never the API type:
// nothing may read these informers through the factory's typed listers.
type cachedWorkload struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	// References are the pod template's ConfigMap and Secret references.
	References []plan.PodReference
	// Status is what the rollout state is derived from (see progress.go).
	Status plan.RolloutStatus
	// TemplateAnnotations are Reloader's opt-in annotations on the pod
	// template, which Reloader reads when the workload has none; usually
	// nil.
	TemplateAnnotations map[string]string
	// TemplateError says why a custom workload has no usable template.
	TemplateError string
	// CanRestart: its kind can roll by a restart (Argo Rollouts).
	CanRestart bool
	// OwnedByCronJob: a Job its CronJob manages, which reroll never
	// touches.
	OwnedByCronJob bool
	// WorkloadRef names the Deployment, in the same namespace, whose pod
	// template an Argo Rollout runs (spec.workloadRef); its References are
	// then that Deployment's, read at each view (viewWorkload).
	WorkloadRef string
	// Selector selects its pods (spec.selector), for the pods a bake
	// watches; empty for kinds whose pods reroll does not watch.
	Selector string
}

// DeepCopyObject implements runtime.Object.
func (w *cachedWorkload) DeepCopyObject() runtime.Object {
	out := &cachedWorkload{TypeMeta: w.TypeMeta, TemplateError: w.TemplateError, Status: w.Status, CanRestart: w.CanRestart, OwnedByCronJob: w.OwnedByCronJob,
		WorkloadRef: w.WorkloadRef, Selector: w.Selector}
	if w.TemplateAnnotations != nil {
		out.TemplateAnnotations = maps.Clone(w.TemplateAnnotations)
	}
	w.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if w.References != nil {
		out.References = make([]plan.PodReference, len(w.References))
		for i, r := range w.References {
			r.Keys = append([]string(nil), r.Keys...)
			out.References[i] = r
		}
	}
	return out
}

// newCachedWorkload returns the cached form of a workload of kind gvk with
// metadata m, pod template template and rollout status. Its references
// share their strings with the template.
func newCachedWorkload(gvk schema.GroupVersionKind, m metav1.Object, template *corev1.PodTemplateSpec, status plan.RolloutStatus) *cachedWorkload {
	return &cachedWorkload{
		TypeMeta: metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), Generation: m.GetGeneration(),
			Annotations: keptAnnotations(m.GetAnnotations()),
		},
		References:          plan.PodReferences(&template.Spec),
		Status:              status,
		TemplateAnnotations: reloaderOptInAnnotations(template.Annotations),
	}
}

// keptAnnotations returns the annotations of a that reroll reads, or nil if
// there are none: its own (reroll.dev/), and Reloader's (see plan.IsReloaderKey),
// on workloads, config objects and Namespaces alike.
func keptAnnotations(a map[string]string) map[string]string {
	var own map[string]string
	for k, v := range a {
		if strings.HasPrefix(k, plan.AnnotationPrefix) || plan.IsReloaderKey(k) {
			if own == nil {
				own = map[string]string{}
			}
			own[k] = v
		}
	}
	return own
}

// reloaderOptInAnnotations returns Reloader's opt-in annotations of a pod
// template, or nil if it has none.
func reloaderOptInAnnotations(a map[string]string) map[string]string {
	var kept map[string]string
	for _, k := range plan.ReloaderOptInKeys() {
		if v, ok := a[k]; ok {
			if kept == nil {
				kept = map[string]string{}
			}
			kept[k] = v
		}
	}
	return kept
}

// selectorOf returns the text of a workload's pod selector, or "" when it
// has none or cannot be read.
func selectorOf(s *metav1.LabelSelector) string {
	if s == nil {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil || sel.Empty() {
		return ""
	}
	return sel.String()
}
