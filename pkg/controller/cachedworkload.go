package controller

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// cachedWorkload is how reroll caches a workload of every kind, built-in or
// custom: its identity, versions and reroll's annotations, and of its pod
// template only what references ConfigMaps and Secrets (see
// referencesOnly). The rest of a real workload (images, probes, resources,
// literal env values, status) is most of its size, and reroll never reads
// it, so caching it would make reroll's memory grow with spec sizes.
//
// The informers' caches therefore hold *cachedWorkload, never the API type:
// nothing may read these informers through the factory's typed listers.
type cachedWorkload struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	// Spec is the spec of the workload's pod template, reduced by
	// referencesOnly.
	Spec corev1.PodSpec
	// TemplateError says why a custom workload has no usable template.
	TemplateError string
}

// DeepCopyObject implements runtime.Object.
func (w *cachedWorkload) DeepCopyObject() runtime.Object {
	out := &cachedWorkload{TypeMeta: w.TypeMeta, TemplateError: w.TemplateError}
	w.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	w.Spec.DeepCopyInto(&out.Spec)
	return out
}

// newCachedWorkload returns the cached form of a workload of kind gvk with
// metadata m and pod template spec spec. It shares the reference structs
// (such as a volume's ConfigMapVolumeSource) with spec, which the caller
// must not modify afterwards.
func newCachedWorkload(gvk schema.GroupVersionKind, m metav1.Object, spec *corev1.PodSpec) *cachedWorkload {
	return &cachedWorkload{
		TypeMeta: metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), Generation: m.GetGeneration(),
			Annotations: rerollAnnotations(m.GetAnnotations()),
		},
		Spec: referencesOnly(spec),
	}
}

// rerollAnnotations returns the reroll.dev/ annotations of a, or nil if
// there are none. They are the only annotations reroll reads, on workloads
// and config objects alike.
func rerollAnnotations(a map[string]string) map[string]string {
	var own map[string]string
	for k, v := range a {
		if strings.HasPrefix(k, annotationPrefix) {
			if own == nil {
				own = map[string]string{}
			}
			own[k] = v
		}
	}
	return own
}

// referencesOnly returns the part of a pod spec that collectPodSpec reads:
// the containers and initContainers that reference ConfigMaps or Secrets,
// with their name, their env variables that do, and their envFrom; and the
// configMap, secret and projected volumes, with only their configMap and
// secret sources. calculateConsumption gives the same result for spec and
// for referencesOnly(spec), which the tests check over every reference
// kind.
func referencesOnly(spec *corev1.PodSpec) corev1.PodSpec {
	var out corev1.PodSpec
	out.InitContainers = containerReferences(spec.InitContainers)
	out.Containers = containerReferences(spec.Containers)
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		switch {
		case v.ConfigMap != nil || v.Secret != nil:
			out.Volumes = append(out.Volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{ConfigMap: v.ConfigMap, Secret: v.Secret}})
		case v.Projected != nil:
			var sources []corev1.VolumeProjection
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil || s.Secret != nil {
					sources = append(sources, corev1.VolumeProjection{ConfigMap: s.ConfigMap, Secret: s.Secret})
				}
			}
			if sources != nil {
				out.Volumes = append(out.Volumes, corev1.Volume{Name: v.Name,
					VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: sources}}})
			}
		}
	}
	return out
}

// containerReferences returns the containers that reference ConfigMaps or
// Secrets, each reduced to its name, those env variables and its envFrom.
func containerReferences(containers []corev1.Container) []corev1.Container {
	var out []corev1.Container
	for i := range containers {
		c := &containers[i]
		var env []corev1.EnvVar
		for _, e := range c.Env {
			if e.ValueFrom != nil && (e.ValueFrom.ConfigMapKeyRef != nil || e.ValueFrom.SecretKeyRef != nil) {
				env = append(env, corev1.EnvVar{Name: e.Name, ValueFrom: &corev1.EnvVarSource{
					ConfigMapKeyRef: e.ValueFrom.ConfigMapKeyRef, SecretKeyRef: e.ValueFrom.SecretKeyRef}})
			}
		}
		if env == nil && len(c.EnvFrom) == 0 {
			continue
		}
		out = append(out, corev1.Container{Name: c.Name, Env: env, EnvFrom: c.EnvFrom})
	}
	return out
}
