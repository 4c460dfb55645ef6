package controller

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

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
	from referenceSite
	// needsMatch: every reference comes from Reloader's search mode, so the
	// object is consumed only while it carries Reloader's match annotation.
	needsMatch bool
}

// referenceCollector merges references to the same object as they are found.
type referenceCollector struct {
	byRef map[configRef]*consumption
}

// add records that from consumes keys (nil: every key) of ref; needsMatch
// says the reference counts only if the object matches (search mode).
func (c *referenceCollector) add(ref configRef, keys []string, optional bool, from referenceSite, needsMatch bool) {
	if ref.name == "" {
		// The API server rejects such specs; nothing can be consumed.
		return
	}
	if c.byRef == nil {
		c.byRef = map[configRef]*consumption{}
	}
	u, ok := c.byRef[ref]
	if !ok {
		u = &consumption{ref: ref, from: from, needsMatch: needsMatch}
		c.byRef[ref] = u
	}
	u.needsMatch = u.needsMatch && needsMatch
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

// result returns the merged consumptions sorted by type, then name, so that
// everything derived from them is deterministic.
func (c *referenceCollector) result() []consumption {
	out := make([]consumption, 0, len(c.byRef))
	for _, u := range c.byRef {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b consumption) int {
		return cmp.Or(cmp.Compare(a.ref.typ, b.ref.typ), cmp.Compare(a.ref.name, b.ref.name))
	})
	return out
}

// podReference is one place in a pod spec that references a ConfigMap or
// Secret. The informers cache a workload's template as its list of
// podReferences and nothing else of it (see cachedWorkload), so everything
// reroll derives from a template (what it consumes, the consumers index,
// the explanations) comes from walkPodSpec, the one walk of a pod spec.
type podReference struct {
	ref configRef
	// keys are the keys the reference names; nil means every key (envFrom,
	// or a volume without items).
	keys []string
	// optional is the reference's own optional flag.
	optional bool
	// site is where in the pod spec the reference is.
	site referenceSite
}

// referenceSite says where in a pod spec a reference is, for messages.
type referenceSite struct {
	// field is the kind of place: env, envFrom or a volume.
	field siteField
	// initContainer is true for initContainers (native sidecars included).
	initContainer bool
	// owner names the container, or the volume.
	owner string
	// envName names the env variable of an env reference.
	envName string
}

// siteField is the kind of place a reference is in.
type siteField uint8

const (
	siteEnv siteField = iota
	siteEnvFrom
	siteVolume
	// siteAnnotation is not in the pod spec: the by-name annotations.
	siteAnnotation
)

// String says where the reference is, such as "container app env A",
// "initContainer init envFrom" or "volume certs".
func (s referenceSite) String() string {
	role := "container"
	if s.initContainer {
		role = "initContainer"
	}
	switch s.field {
	case siteEnv:
		return role + " " + s.owner + " env " + s.envName
	case siteEnvFrom:
		return role + " " + s.owner + " envFrom"
	case siteVolume:
		return "volume " + s.owner
	}
	return "annotation " + s.owner
}

// walkPodSpec calls visit for every ConfigMap and Secret reference of a pod
// spec, in spec order: env valueFrom and envFrom of initContainers (native
// sidecars are initContainers) and containers, then configMap, secret and
// projected volumes. The references share their strings with spec.
func walkPodSpec(spec *corev1.PodSpec, visit func(podReference)) {
	for i := range spec.InitContainers {
		walkContainer(&spec.InitContainers[i], true, visit)
	}
	for i := range spec.Containers {
		walkContainer(&spec.Containers[i], false, visit)
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		site := referenceSite{field: siteVolume, owner: v.Name}
		switch {
		case v.ConfigMap != nil:
			visit(podReference{configRef{typeConfigMap, v.ConfigMap.Name}, itemKeys(v.ConfigMap.Items), ptr.Deref(v.ConfigMap.Optional, false), site})
		case v.Secret != nil:
			visit(podReference{configRef{typeSecret, v.Secret.SecretName}, itemKeys(v.Secret.Items), ptr.Deref(v.Secret.Optional, false), site})
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					visit(podReference{configRef{typeConfigMap, s.ConfigMap.Name}, itemKeys(s.ConfigMap.Items), ptr.Deref(s.ConfigMap.Optional, false), site})
				}
				if s.Secret != nil {
					visit(podReference{configRef{typeSecret, s.Secret.Name}, itemKeys(s.Secret.Items), ptr.Deref(s.Secret.Optional, false), site})
				}
			}
		}
	}
}

// walkContainer calls visit for the env and envFrom references of one
// container.
func walkContainer(ctr *corev1.Container, initContainer bool, visit func(podReference)) {
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			continue
		}
		site := referenceSite{field: siteEnv, initContainer: initContainer, owner: ctr.Name, envName: e.Name}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			visit(podReference{configRef{typeConfigMap, r.Name}, []string{r.Key}, ptr.Deref(r.Optional, false), site})
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			visit(podReference{configRef{typeSecret, r.Name}, []string{r.Key}, ptr.Deref(r.Optional, false), site})
		}
	}
	for _, e := range ctr.EnvFrom {
		site := referenceSite{field: siteEnvFrom, initContainer: initContainer, owner: ctr.Name}
		if r := e.ConfigMapRef; r != nil {
			visit(podReference{configRef{typeConfigMap, r.Name}, nil, ptr.Deref(r.Optional, false), site})
		}
		if r := e.SecretRef; r != nil {
			visit(podReference{configRef{typeSecret, r.Name}, nil, ptr.Deref(r.Optional, false), site})
		}
	}
}

// podReferences returns every reference of a pod spec (see walkPodSpec),
// or nil when there is none.
func podReferences(spec *corev1.PodSpec) []podReference {
	var refs []podReference
	walkPodSpec(spec, func(r podReference) { refs = append(refs, r) })
	return refs
}

// calculateConsumption returns what a workload consumes: the references of
// its pod template (refs, from podReferences) that its auto modes watch,
// those of search mode (which need the object's match annotation), and the
// objects named in its by-name annotations (every key, required); less the
// objects it excludes.
func calculateConsumption(refs []podReference, o optIn) []consumption {
	var c referenceCollector
	for _, r := range refs {
		switch {
		case o.excludes(r.ref):
		case o.watchesAll(r.ref.typ):
			c.add(r.ref, r.keys, r.optional, r.site, false)
		case o.search:
			c.add(r.ref, r.keys, r.optional, r.site, true)
		}
	}
	for _, name := range o.configMaps {
		if ref := (configRef{typeConfigMap, name}); !o.excludes(ref) {
			c.add(ref, nil, false, referenceSite{field: siteAnnotation, owner: AnnotationConfigMaps}, false)
		}
	}
	for _, name := range o.secrets {
		if ref := (configRef{typeSecret, name}); !o.excludes(ref) {
			c.add(ref, nil, false, referenceSite{field: siteAnnotation, owner: AnnotationSecrets}, false)
		}
	}
	return c.result()
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
