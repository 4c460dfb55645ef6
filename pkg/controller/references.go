package controller

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// configKind is the kind of object a workload consumes configuration from.
type configKind string

const (
	kindConfigMap configKind = "ConfigMap"
	kindSecret    configKind = "Secret"
)

// configRef names a ConfigMap or Secret in the workload's own namespace.
type configRef struct {
	kind configKind
	name string
}

// String returns "ConfigMap/name" or "Secret/name", the form used in Events.
func (r configRef) String() string {
	return string(r.kind) + "/" + r.name
}

// consumption is everything one workload consumes from one ConfigMap or
// Secret, merged over all the places that reference it.
type consumption struct {
	ref configRef
	// required is true when at least one reference is not optional, so the
	// object must exist for new pods to start.
	required bool
	// allKeys is true when at least one reference consumes every key
	// (envFrom, or a volume without items).
	allKeys bool
	// keys holds the keys named by valueFrom references and volume items,
	// each mapped to whether a non-optional reference names it.
	keys map[string]bool
	// from says where the first reference was found, for messages.
	from string
}

// referenceCollector merges references to the same object as they are found.
type referenceCollector struct {
	byRef map[configRef]*consumption
}

// add records that from consumes keys (nil: every key) of ref.
func (c *referenceCollector) add(ref configRef, keys []string, optional bool, from string) {
	if ref.name == "" {
		// The API server rejects such specs; nothing can be consumed.
		return
	}
	if c.byRef == nil {
		c.byRef = map[configRef]*consumption{}
	}
	u, ok := c.byRef[ref]
	if !ok {
		u = &consumption{ref: ref, from: from}
		c.byRef[ref] = u
	}
	u.required = u.required || !optional
	if keys == nil {
		u.allKeys = true
		return
	}
	if u.keys == nil {
		u.keys = make(map[string]bool, len(keys))
	}
	for _, k := range keys {
		u.keys[k] = u.keys[k] || !optional
	}
}

// result returns the merged consumptions sorted by kind, then name, so that
// everything derived from them is deterministic.
func (c *referenceCollector) result() []consumption {
	out := make([]consumption, 0, len(c.byRef))
	for _, u := range c.byRef {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b consumption) int {
		return cmp.Or(cmp.Compare(a.ref.kind, b.ref.kind), cmp.Compare(a.ref.name, b.ref.name))
	})
	return out
}

// calculateConsumption returns what a workload consumes: every ConfigMap and
// Secret its pod spec references when o.auto is set, plus the objects named
// in its by-name annotations (every key, required).
func calculateConsumption(spec *corev1.PodSpec, o optIn) []consumption {
	var c referenceCollector
	if o.auto && spec != nil {
		collectPodSpec(&c, spec)
	}
	for _, name := range o.configMaps {
		c.add(configRef{kindConfigMap, name}, nil, false, "annotation "+AnnotationConfigMaps)
	}
	for _, name := range o.secrets {
		c.add(configRef{kindSecret, name}, nil, false, "annotation "+AnnotationSecrets)
	}
	return c.result()
}

// collectPodSpec adds every ConfigMap and Secret reference of a pod spec:
// env valueFrom and envFrom of containers and initContainers (native
// sidecars are initContainers), and configMap, secret and projected volumes.
func collectPodSpec(c *referenceCollector, spec *corev1.PodSpec) {
	for i := range spec.InitContainers {
		collectContainer(c, &spec.InitContainers[i], "initContainer")
	}
	for i := range spec.Containers {
		collectContainer(c, &spec.Containers[i], "container")
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		from := "volume " + v.Name
		switch {
		case v.ConfigMap != nil:
			c.add(configRef{kindConfigMap, v.ConfigMap.Name}, itemKeys(v.ConfigMap.Items), ptr.Deref(v.ConfigMap.Optional, false), from)
		case v.Secret != nil:
			c.add(configRef{kindSecret, v.Secret.SecretName}, itemKeys(v.Secret.Items), ptr.Deref(v.Secret.Optional, false), from)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					c.add(configRef{kindConfigMap, s.ConfigMap.Name}, itemKeys(s.ConfigMap.Items), ptr.Deref(s.ConfigMap.Optional, false), from)
				}
				if s.Secret != nil {
					c.add(configRef{kindSecret, s.Secret.Name}, itemKeys(s.Secret.Items), ptr.Deref(s.Secret.Optional, false), from)
				}
			}
		}
	}
}

// collectContainer adds the env and envFrom references of one container.
func collectContainer(c *referenceCollector, ctr *corev1.Container, role string) {
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			continue
		}
		from := fmt.Sprintf("%s %s env %s", role, ctr.Name, e.Name)
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			c.add(configRef{kindConfigMap, r.Name}, []string{r.Key}, ptr.Deref(r.Optional, false), from)
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			c.add(configRef{kindSecret, r.Name}, []string{r.Key}, ptr.Deref(r.Optional, false), from)
		}
	}
	for _, e := range ctr.EnvFrom {
		from := fmt.Sprintf("%s %s envFrom", role, ctr.Name)
		if r := e.ConfigMapRef; r != nil {
			c.add(configRef{kindConfigMap, r.Name}, nil, ptr.Deref(r.Optional, false), from)
		}
		if r := e.SecretRef; r != nil {
			c.add(configRef{kindSecret, r.Name}, nil, ptr.Deref(r.Optional, false), from)
		}
	}
}

// itemKeys returns the keys a volume's items select, or nil when the volume
// has no items and so projects every key.
func itemKeys(items []corev1.KeyToPath) []string {
	if len(items) == 0 {
		return nil
	}
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	return keys
}
