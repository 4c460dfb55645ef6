package controller

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reroll/reroll/pkg/plan"
)

// inputBuilder builds the inputs of reroll's decisions (pkg/plan) from
// cached objects. The controller's sync builds them from its informers'
// listers; the kubectl plugin (Inspector) from listers over the pages of a
// LIST. Both ask the same questions through the same builder, so they
// cannot disagree on how a workload opts in, which objects it reads or what
// a change carries.
type inputBuilder struct {
	// hashKey, optIn and rollOnAdopt are the settings every plan uses. The
	// plugin leaves hashKey zero when it cannot read the key, and then asks
	// nothing that needs it.
	hashKey      plan.HashKey
	optIn        plan.OptInSettings
	rollOnAdopt  bool
	rollOnDelete bool
	// configs read the cached ConfigMaps and Secrets, as TransformForCache
	// leaves them; a type missing here is not watched
	// (--resources-to-ignore).
	configs map[plan.ConfigType]configStore
	// providerClasses reads the Secrets Store CSI driver's classes (see
	// csi.go); nil reads none.
	providerClasses func(namespace, name string) (metav1.Object, bool)
}

// settings returns the settings of every plan.
func (b inputBuilder) settings() plan.Settings {
	return plan.Settings{HashKey: b.hashKey, OptIn: b.optIn, RollOnAdopt: b.rollOnAdopt, RollOnDelete: b.rollOnDelete}
}

// configStore is a read-only view of a cache of ConfigMaps or Secrets: an
// informer's indexer, a group of them (one per watched namespace), or the
// plugin's indexer over the pages of a LIST.
type configStore interface {
	GetByKey(key string) (any, bool, error)
	List() []any
}

// configObject returns the cached ConfigMap, Secret or SecretProviderClass
// ref of namespace.
func (b inputBuilder) configObject(namespace string, ref plan.ConfigRef) (metav1.Object, bool) {
	if ref.Type == plan.TypeSecretProviderClass {
		if b.providerClasses == nil {
			return nil, false
		}
		return b.providerClasses(namespace, ref.Name)
	}
	store, ok := b.configs[ref.Type]
	if !ok {
		return nil, false // an ignored type (--resources-to-ignore)
	}
	obj, exists, _ := store.GetByKey(namespace + "/" + ref.Name)
	o, isObject := obj.(metav1.Object)
	return o, exists && isObject
}

// names lists the names of the cached objects of type t in namespace, for
// the patterns of Reloader's reload annotations. The config caches have no
// namespace index (it would cost an entry per object), so this scans them:
// only workloads with patterns ask.
func (b inputBuilder) names(namespace string, t plan.ConfigType) []string {
	store, ok := b.configs[t]
	if !ok {
		return nil
	}
	var names []string
	for _, obj := range store.List() {
		if o, ok := obj.(metav1.Object); ok && o.GetNamespace() == namespace {
			names = append(names, o.GetName())
		}
	}
	return names
}

// annotationsOf returns the annotations a workload opts in with: its own,
// and with --reloader-annotations Reloader's of its pod template when it
// has none of its own.
func (b inputBuilder) annotationsOf(w workload) map[string]string {
	if b.optIn.Reloader {
		return plan.WithReloaderFallback(w.meta.GetAnnotations(), w.templateAnnotations)
	}
	return w.meta.GetAnnotations()
}

// optInOf reads how a cached workload opts in (see plan.ParseOptIn). A Job
// that a CronJob manages never is: its CronJob is.
func (b inputBuilder) optInOf(w workload) (plan.OptIn, []string, error) {
	if w.ownedByCronJob {
		return plan.OptIn{}, nil, nil
	}
	return plan.ParseOptIn(b.annotationsOf(w), b.optIn)
}

// lookup returns a lookup of the cached ConfigMaps and Secrets of a
// namespace that also records, in found, the digests of what it looks up.
func (b inputBuilder) lookup(namespace string, found map[plan.ConfigRef]map[string]string) plan.ConfigLookup {
	return plan.NewConfigLookup(func(ref plan.ConfigRef) (metav1.Object, bool) { return b.configObject(namespace, ref) },
		b.optIn.Reloader, found)
}

// planInput returns a workload's plan input, its recorded state read from
// its consumed annotation. The lookup records in found the digests of every
// object it reads.
func (b inputBuilder) planInput(w workload, found map[plan.ConfigRef]map[string]string) plan.Input {
	in := plan.Input{
		Annotations:     b.annotationsOf(w),
		References:      w.references,
		TemplateError:   w.templateError,
		Lookup:          b.lookup(w.meta.GetNamespace(), found),
		CanRestart:      w.canRestart,
		Names:           func(t plan.ConfigType) []string { return b.names(w.meta.GetNamespace(), t) },
		FromWorkloadRef: w.fromWorkloadRef,
	}
	in.Recorded, in.HasRecorded = w.meta.GetAnnotations()[plan.AnnotationConsumed]
	return in
}

// changedObjects returns the consumed objects whose change a planned roll
// p of a workload in namespace carries, with the change's ID (from current,
// the digests its plan read) and the object's annotations.
func (b inputBuilder) changedObjects(namespace string, p plan.Plan, current map[plan.ConfigRef]map[string]string) []plan.ChangedObject {
	byID := make(map[string]plan.ConfigRef, len(p.Consumed))
	for _, u := range p.Consumed {
		byID[plan.EntryID(u)] = u.Ref
	}
	var out []plan.ChangedObject
	for _, id := range p.Decision.Changed {
		ref := byID[id]
		if slices.ContainsFunc(out, func(o plan.ChangedObject) bool { return o.Ref == ref }) {
			continue
		}
		o := plan.ChangedObject{Ref: ref, Change: plan.CalculateChangeID(b.hashKey, ref, current[ref])}
		if obj, ok := b.configObject(namespace, ref); ok {
			o.Annotations = obj.GetAnnotations()
		}
		o.Released = plan.IsReleased(o.Annotations, o.Change)
		out = append(out, o)
	}
	return out
}
