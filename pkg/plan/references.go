package plan

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Consumption is everything one workload consumes from one ConfigMap or
// Secret, merged over all the places that reference it.
type Consumption struct {
	Ref ConfigRef
	// required is true when at least one reference is not optional, so the
	// object must exist for new pods to start.
	Required bool
	// allKeys is true when at least one reference consumes every key
	// (envFrom, or a volume without items).
	AllKeys bool
	// keys holds the keys named by valueFrom references and volume items,
	// each mapped to whether a non-optional reference names it.
	Keys map[string]bool
	// from says where the first reference was found, for messages.
	From ReferenceSite
	// needsMatch: every reference comes from Reloader's search mode, so the
	// object is consumed only while it carries Reloader's match annotation.
	NeedsMatch bool
}

// referenceCollector merges references to the same object as they are found.
type referenceCollector struct {
	byRef map[ConfigRef]*Consumption
}

// add records that from consumes keys (nil: every key) of ref; needsMatch
// says the reference counts only if the object matches (search mode).
func (c *referenceCollector) add(ref ConfigRef, keys []string, optional bool, from ReferenceSite, needsMatch bool) {
	if ref.Name == "" {
		// The API server rejects such specs; nothing can be consumed.
		return
	}
	if c.byRef == nil {
		c.byRef = map[ConfigRef]*Consumption{}
	}
	u, ok := c.byRef[ref]
	if !ok {
		u = &Consumption{Ref: ref, From: from, NeedsMatch: needsMatch}
		c.byRef[ref] = u
	}
	u.NeedsMatch = u.NeedsMatch && needsMatch
	u.Required = u.Required || !optional
	if keys == nil {
		u.AllKeys = true
		return
	}
	if u.Keys == nil {
		u.Keys = make(map[string]bool, len(keys))
	}
	for _, k := range keys {
		u.Keys[k] = u.Keys[k] || !optional
	}
}

// result returns the merged consumptions sorted by type, then name, so that
// everything derived from them is deterministic.
func (c *referenceCollector) result() []Consumption {
	out := make([]Consumption, 0, len(c.byRef))
	for _, u := range c.byRef {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b Consumption) int {
		return cmp.Or(cmp.Compare(a.Ref.Type, b.Ref.Type), cmp.Compare(a.Ref.Name, b.Ref.Name))
	})
	return out
}

// PodReference is one place in a pod spec that references a ConfigMap or
// Secret. The informers cache a workload's template as its list of
// PodReferences and nothing else of it (see cachedWorkload), so everything
// reroll derives from a template (what it consumes, the consumers index,
// the explanations) comes from WalkPodSpec, the one walk of a pod spec.
type PodReference struct {
	Ref ConfigRef
	// keys are the keys the reference names; nil means every key (envFrom,
	// or a volume without items).
	Keys []string
	// optional is the reference's own optional flag.
	Optional bool
	// site is where in the pod spec the reference is.
	Site ReferenceSite
}

// ReferenceSite says where in a pod spec a reference is, for messages.
type ReferenceSite struct {
	// field is the kind of place: env, envFrom or a volume.
	Field SiteField
	// initContainer is true for initContainers (native sidecars included).
	InitContainer bool
	// owner names the container, or the volume.
	Owner string
	// envName names the env variable of an env reference.
	EnvName string
}

// SiteField is the kind of place a reference is in.
type SiteField uint8

const (
	SiteEnv SiteField = iota
	SiteEnvFrom
	SiteVolume
	// SiteAnnotation is not in the pod spec: the by-name annotations.
	SiteAnnotation
)

// String says where the reference is, such as "container app env A",
// "initContainer init envFrom" or "volume certs".
func (s ReferenceSite) String() string {
	role := "container"
	if s.InitContainer {
		role = "initContainer"
	}
	switch s.Field {
	case SiteEnv:
		return role + " " + s.Owner + " env " + s.EnvName
	case SiteEnvFrom:
		return role + " " + s.Owner + " envFrom"
	case SiteVolume:
		return "volume " + s.Owner
	}
	return "annotation " + s.Owner
}

// WalkPodSpec calls visit for every ConfigMap and Secret reference of a pod
// spec, in spec order: env valueFrom and envFrom of initContainers (native
// sidecars are initContainers) and containers, then configMap, secret and
// projected volumes. The references share their strings with spec.
func WalkPodSpec(spec *corev1.PodSpec, visit func(PodReference)) {
	for i := range spec.InitContainers {
		walkContainer(&spec.InitContainers[i], true, visit)
	}
	for i := range spec.Containers {
		walkContainer(&spec.Containers[i], false, visit)
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		site := ReferenceSite{Field: SiteVolume, Owner: v.Name}
		switch {
		case v.ConfigMap != nil:
			visit(PodReference{ConfigRef{TypeConfigMap, v.ConfigMap.Name}, itemKeys(v.ConfigMap.Items), ptr.Deref(v.ConfigMap.Optional, false), site})
		case v.Secret != nil:
			visit(PodReference{ConfigRef{TypeSecret, v.Secret.SecretName}, itemKeys(v.Secret.Items), ptr.Deref(v.Secret.Optional, false), site})
		case v.CSI != nil && v.CSI.Driver == CSIDriverSecretsStore && v.CSI.VolumeAttributes["secretProviderClass"] != "":
			// Optional: the class has no versions until the driver mounts
			// it for a pod, and a pod that cannot mount it does not start
			// anyway; see Decide for its first versions.
			visit(PodReference{ConfigRef{TypeSecretProviderClass, v.CSI.VolumeAttributes["secretProviderClass"]}, nil, true, site})
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					visit(PodReference{ConfigRef{TypeConfigMap, s.ConfigMap.Name}, itemKeys(s.ConfigMap.Items), ptr.Deref(s.ConfigMap.Optional, false), site})
				}
				if s.Secret != nil {
					visit(PodReference{ConfigRef{TypeSecret, s.Secret.Name}, itemKeys(s.Secret.Items), ptr.Deref(s.Secret.Optional, false), site})
				}
			}
		}
	}
}

// walkContainer calls visit for the env and envFrom references of one
// container.
func walkContainer(ctr *corev1.Container, initContainer bool, visit func(PodReference)) {
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			continue
		}
		site := ReferenceSite{Field: SiteEnv, InitContainer: initContainer, Owner: ctr.Name, EnvName: e.Name}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			visit(PodReference{ConfigRef{TypeConfigMap, r.Name}, []string{r.Key}, ptr.Deref(r.Optional, false), site})
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			visit(PodReference{ConfigRef{TypeSecret, r.Name}, []string{r.Key}, ptr.Deref(r.Optional, false), site})
		}
	}
	for _, e := range ctr.EnvFrom {
		site := ReferenceSite{Field: SiteEnvFrom, InitContainer: initContainer, Owner: ctr.Name}
		if r := e.ConfigMapRef; r != nil {
			visit(PodReference{ConfigRef{TypeConfigMap, r.Name}, nil, ptr.Deref(r.Optional, false), site})
		}
		if r := e.SecretRef; r != nil {
			visit(PodReference{ConfigRef{TypeSecret, r.Name}, nil, ptr.Deref(r.Optional, false), site})
		}
	}
}

// PodReferences returns every reference of a pod spec (see WalkPodSpec),
// or nil when there is none.
func PodReferences(spec *corev1.PodSpec) []PodReference {
	var refs []PodReference
	WalkPodSpec(spec, func(r PodReference) { refs = append(refs, r) })
	return refs
}

// CalculateConsumption returns what a workload consumes: the references of
// its pod template (refs, from PodReferences) that its auto modes watch,
// those of search mode (which need the object's match annotation), and the
// objects named in its by-name annotations (every key, required); less the
// objects it excludes.
func CalculateConsumption(refs []PodReference, o OptIn) []Consumption {
	var c referenceCollector
	for _, r := range refs {
		switch {
		case o.Excludes(r.Ref):
		case o.WatchesAll(r.Ref.Type):
			c.add(r.Ref, r.Keys, r.Optional, r.Site, false)
		case o.Search:
			c.add(r.Ref, r.Keys, r.Optional, r.Site, true)
		}
	}
	for _, name := range o.ConfigMaps {
		if ref := (ConfigRef{TypeConfigMap, name}); !o.Excludes(ref) {
			c.add(ref, nil, false, ReferenceSite{Field: SiteAnnotation, Owner: AnnotationConfigMaps}, false)
		}
	}
	for _, name := range o.Secrets {
		if ref := (ConfigRef{TypeSecret, name}); !o.Excludes(ref) {
			c.add(ref, nil, false, ReferenceSite{Field: SiteAnnotation, Owner: AnnotationSecrets}, false)
		}
	}
	for _, ref := range o.matched {
		c.add(ref, nil, true, ReferenceSite{Field: SiteAnnotation, Owner: "a Reloader reload pattern"}, false)
	}
	for _, name := range o.SecretProviderClasses {
		c.add(ConfigRef{TypeSecretProviderClass, name}, nil, true, ReferenceSite{Field: SiteAnnotation, Owner: AnnotationSecretProviderClasses}, false)
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
