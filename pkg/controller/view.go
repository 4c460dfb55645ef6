package controller

import (
	"errors"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// cacheView is the cluster as reroll's decisions read it: the cached
// workloads of every watched kind, ConfigMaps, Secrets, the Secrets Store
// CSI driver's classes and Namespaces, with the decision settings. The
// controller's view reads its informers; the kubectl plugin's
// (Inspector) reads indexers over the pages of a LIST, built the same way.
// Both ask every question through it, so they cannot disagree on how a
// workload opts in, which objects it reads, who consumes what or what a
// change carries.
type cacheView struct {
	decisions Decisions
	// hashKey is the key of every plan; the plugin leaves it zero when it
	// cannot read it, and then asks nothing that needs it.
	hashKey plan.HashKey
	// kinds are the watched workload kinds.
	kinds *kindRegistry
	// configs read the cached ConfigMaps and Secrets, as TransformForCache
	// leaves them; a type missing here is not watched
	// (--resources-to-ignore).
	configs map[plan.ConfigType]configStore
	// namespaces holds the Namespaces' labels and reroll.dev annotations;
	// nil when they are not read (Options.SkipNamespaceObjects).
	namespaces configStore
	// namespaceSelector is Decisions.NamespaceSelector, parsed.
	namespaceSelector labels.Selector
	// providerClasses reads the Secrets Store CSI driver's classes (see
	// csi.go); nil reads none.
	providerClasses func(namespace, name string) (metav1.Object, bool)
}

// errKindNotWatched is the error of a key whose kind is not watched (any
// more: custom kinds come and go).
var errKindNotWatched = errors.New("kind not watched")

// configStore is a read-only view of a cache of ConfigMaps, Secrets or
// Namespaces: an informer's indexer, a group of them (one per watched
// namespace), or the plugin's indexer over the pages of a LIST.
type configStore interface {
	GetByKey(key string) (any, bool, error)
	List() []any
}

// newCacheView returns the view of decisions d with hash key k, and no
// kinds or objects yet.
func newCacheView(d Decisions, k plan.HashKey) (*cacheView, error) {
	selector, err := labels.Parse(d.NamespaceSelector)
	if err != nil {
		return nil, err
	}
	return &cacheView{decisions: d, hashKey: k, kinds: newKindRegistry(), configs: map[plan.ConfigType]configStore{}, namespaceSelector: selector}, nil
}

// settings returns the settings of every plan.
func (v *cacheView) settings() plan.Settings {
	d := v.decisions
	return plan.Settings{HashKey: v.hashKey, RollOnAdopt: d.RollOnAdopt, RollOnDelete: d.RollOnDelete,
		OptIn: plan.OptInSettings{AutoAll: d.AutoAll, Reloader: d.ReloaderAnnotations, IgnoreTypes: d.IgnoreConfigTypes}}
}

// lookupConfig returns the cached ConfigMap, Secret or SecretProviderClass
// ref of namespace.
func (v *cacheView) lookupConfig(namespace string, ref plan.ConfigRef) (metav1.Object, bool) {
	if ref.Type == plan.TypeSecretProviderClass {
		if v.providerClasses == nil {
			return nil, false
		}
		return v.providerClasses(namespace, ref.Name)
	}
	store, ok := v.configs[ref.Type]
	if !ok {
		return nil, false // an ignored type (--resources-to-ignore)
	}
	obj, exists, _ := store.GetByKey(namespace + "/" + ref.Name)
	o, isObject := obj.(metav1.Object)
	return o, exists && isObject
}

// configNames lists the names of the cached objects of type t in namespace,
// for the patterns of Reloader's reload annotations. The config caches have
// no namespace index (it would cost an entry per object), so this scans
// them: only workloads with patterns ask.
func (v *cacheView) configNames(namespace string, t plan.ConfigType) []string {
	store, ok := v.configs[t]
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
func (v *cacheView) annotationsOf(w workload) map[string]string {
	if v.decisions.ReloaderAnnotations {
		return plan.WithReloaderFallback(w.meta.GetAnnotations(), w.templateAnnotations)
	}
	return w.meta.GetAnnotations()
}

// optInOf reads how a cached workload opts in (see plan.ParseOptIn). A Job
// that a CronJob manages never is: its CronJob is.
func (v *cacheView) optInOf(w workload) (plan.OptIn, []string, error) {
	if w.ownedByCronJob {
		return plan.OptIn{}, nil, nil
	}
	return plan.ParseOptIn(v.annotationsOf(w), v.settings().OptIn)
}

// wantsSync reports whether a workload is opted in, or carries opt-in
// annotations so malformed, or so at odds with each other, that the user
// must be told.
func (v *cacheView) wantsSync(w workload) bool {
	o, conflicts, err := v.optInOf(w)
	return err != nil || len(conflicts) > 0 || o.Enabled()
}

// lookup returns a lookup of the cached ConfigMaps and Secrets of a
// namespace that also records, in found, the digests of what it looks up.
func (v *cacheView) lookup(namespace string, found map[plan.ConfigRef]map[string]string) plan.ConfigLookup {
	return plan.NewConfigLookup(func(ref plan.ConfigRef) (metav1.Object, bool) { return v.lookupConfig(namespace, ref) },
		v.decisions.ReloaderAnnotations, found)
}

// planInput returns a workload's plan input, its recorded state read from
// its consumed annotation. The lookup records in found the digests of every
// object it reads.
func (v *cacheView) planInput(w workload, found map[plan.ConfigRef]map[string]string) plan.Input {
	in := plan.Input{
		Annotations:     v.annotationsOf(w),
		References:      w.references,
		TemplateError:   w.templateError,
		Lookup:          v.lookup(w.meta.GetNamespace(), found),
		CanRestart:      w.canRestart,
		Names:           func(t plan.ConfigType) []string { return v.configNames(w.meta.GetNamespace(), t) },
		FromWorkloadRef: w.fromWorkloadRef,
	}
	in.Recorded, in.HasRecorded = w.meta.GetAnnotations()[plan.AnnotationConsumed]
	return in
}

// planSync returns a workload's plan, from the caches as usual, unless a
// consumed object changed while the workload was not adopted yet (before
// holds those objects as they were) and that plan would not roll: then it
// compares against the content before the change, and rolls when a key the
// workload consumes changed. Not only a workload still without a recorded
// state: an adoption that read the caches after the change reached them,
// but before the change's event was handled, recorded the new content as
// if the Pods ran it.
func (v *cacheView) planSync(in plan.Input, namespace string, before map[plan.ConfigRef]metav1.Object) plan.Plan {
	p := plan.Compute(in, v.settings())
	if len(before) == 0 || p.Blocked || p.OptedOut {
		return p
	}
	switch p.Decision.Action {
	case plan.ActionAdopt, plan.ActionNone, plan.ActionRecord:
		if bp, ok := v.planAgainstBaseline(in, namespace, before); ok {
			return bp
		}
	}
	return p
}

// planAgainstBaseline returns the plan that takes the consumed objects in
// before, as they were before their changes, for the workload's recorded
// state. ok is true only when that plan rolls: a key the workload consumes
// changed since.
func (v *cacheView) planAgainstBaseline(in plan.Input, namespace string, before map[plan.ConfigRef]metav1.Object) (p plan.Plan, ok bool) {
	s := v.settings()
	then := in
	then.HasRecorded = false
	then.Lookup = plan.NewConfigLookup(func(ref plan.ConfigRef) (metav1.Object, bool) {
		if obj, ok := before[ref]; ok {
			return obj, true
		}
		return v.lookupConfig(namespace, ref)
	}, v.decisions.ReloaderAnnotations, map[plan.ConfigRef]map[string]string{})
	baseline := plan.Compute(then, s)
	if baseline.Blocked || baseline.OptedOut {
		return plan.Plan{}, false
	}
	in.Recorded, in.HasRecorded = baseline.Desired.String(), true
	p = plan.Compute(in, s)
	if p.Blocked || p.Decision.Action != plan.ActionRoll {
		return plan.Plan{}, false
	}
	return p, true
}

// changedObjects returns the consumed objects whose change a planned roll
// p of a workload in namespace carries, with the change's ID (from current,
// the digests its plan read) and the object's annotations.
func (v *cacheView) changedObjects(namespace string, p plan.Plan, current map[plan.ConfigRef]map[string]string) []plan.ChangedObject {
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
		o := plan.ChangedObject{Ref: ref, Change: plan.CalculateChangeID(v.hashKey, ref, current[ref])}
		if obj, ok := v.lookupConfig(namespace, ref); ok {
			o.Annotations = obj.GetAnnotations()
		}
		o.Released = plan.IsReleased(o.Annotations, o.Change)
		out = append(out, o)
	}
	return out
}

// namespace returns the cached Namespace name.
func (v *cacheView) namespace(name string) (*corev1.Namespace, bool) {
	if v.namespaces == nil {
		return nil, false
	}
	obj, _, _ := v.namespaces.GetByKey(name)
	ns, ok := obj.(*corev1.Namespace)
	return ns, ok
}

// namespaceAnnotations returns the annotations of a cached Namespace, or
// nil.
func (v *cacheView) namespaceAnnotations(name string) map[string]string {
	if ns, ok := v.namespace(name); ok {
		return ns.Annotations
	}
	return nil
}

// namespaceSelected reports whether workloads in namespace may be synced:
// it is not ignored, and its labels match the namespace selector. A
// Namespace that is not cached (yet) is not selected.
func (v *cacheView) namespaceSelected(namespace string) bool {
	if slices.Contains(v.decisions.IgnoreNamespaces, namespace) {
		return false
	}
	if v.namespaceSelector.Empty() {
		return true
	}
	ns, ok := v.namespace(namespace)
	return ok && v.namespaceSelector.Matches(labels.Set(ns.Labels))
}

// workload returns the cached workload key, or a NotFound error.
func (v *cacheView) workload(key workloadKey) (workload, workloadAdapter, error) {
	a, ok := v.kinds.get(key.groupKind)
	if !ok {
		return workload{}, nil, errKindNotWatched
	}
	w, err := getWorkload(a, key.name)
	return w, a, err
}

// cachedWorkloadOf returns the cached workload key, or false.
func (v *cacheView) cachedWorkloadOf(key workloadKey) (workload, bool) {
	w, _, err := v.workload(key)
	return w, err == nil
}

// deploymentTemplate returns the references and Reloader's template
// annotations of the cached Deployment namespace/name, for the objects that
// run its template (spec.workloadRef).
func (v *cacheView) deploymentTemplate(namespace, name string) ([]plan.PodReference, map[string]string, bool) {
	w, _, err := v.workload(workloadKey{groupKind: "Deployment", name: cache.ObjectName{Namespace: namespace, Name: name}})
	if err != nil {
		return nil, nil, false
	}
	return w.references, w.templateAnnotations, true
}

// rolloutState returns the state of a workload's current rollout, timed
// from the roll reroll recorded on it, if any.
func (v *cacheView) rolloutState(w workload, now time.Time) plan.RolloutState {
	var started time.Time
	if rec, err := plan.ParseRolloutRecord(w.meta.GetAnnotations()[plan.AnnotationRollout]); err == nil {
		started = rec.Started
	}
	return plan.CalculateRolloutState(w.status, started, now, v.decisions.RolloutTimeout)
}

// keyOfCached returns the key of a cached workload of a's kind.
func keyOfCached(a workloadAdapter, cw *cachedWorkload) workloadKey {
	return workloadKey{groupKind: a.groupKind(), name: cache.MetaObjectToName(cw)}
}
