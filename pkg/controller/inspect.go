package controller

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// The inspector answers, for tools such as kubectl-reroll, what reroll sees
// and what a change would roll, from a snapshot of the cluster's objects. It
// decides as the controller's sync does, with the same code: the snapshot
// is held in the same adapters, indexes and view (cacheView), and every
// verdict comes from the same gatherer's decide, under the controller's
// own decision settings. It reads nothing from the API itself and writes
// nothing.

// InspectSettings are what an inspection shares with the controller it
// explains.
type InspectSettings struct {
	// Decisions are the controller's decision settings (see
	// DecisionFlags): those it published, with the plugin's overrides.
	Decisions Decisions
	// HashKey is reroll's hash key; nil when it cannot be read, and then
	// whether a workload is in sync is unknown.
	HashKey *plan.HashKey
	// Unreadable says, per type ("ConfigMap", "Secret", and "HashKey" for
	// the hash key), why objects of that type are missing from the
	// snapshot (a read was forbidden): a workload that needs one is then in
	// an unknown state, never guessed.
	Unreadable map[string]string
	// Now is the time decisions are made at; zero: the time of each
	// question.
	Now time.Time
}

// Inspector holds a snapshot of workloads, ConfigMaps, Secrets, Namespaces
// and the Secrets Store CSI driver's pod statuses, as the controller's
// caches would hold them, in unstarted informers' indexers. Add, AddCustom,
// AddProviderClassPod and MarkUnreadable are safe for concurrent use, so
// that a snapshot can be read in parallel; the questions are asked once it
// is complete.
type Inspector struct {
	settings InspectSettings
	view     *cacheView
	gatherer *gatherer
	factory  informers.SharedInformerFactory
	// custom creates the adapters of custom kinds as their objects arrive.
	custom *inspectedCustomKinds
	// providerPods holds the CSI driver's pod statuses (see csi.go).
	providerPods cache.Indexer
	unreadable   *keyedStrings
	// pods are the pods of the workloads whose bake may not be over.
	pods *snapshotPods
}

// NewInspector returns an empty Inspector that decides with s.
func NewInspector(s InspectSettings) *Inspector {
	var key plan.HashKey
	if s.HashKey != nil {
		key = *s.HashKey
	}
	view, err := newCacheView(s.Decisions, key)
	if err != nil {
		// The selector was checked when the flags were; a bad one selects
		// nothing here rather than failing.
		view, _ = newCacheView(Decisions{}, key)
		view.decisions = s.Decisions
	}
	// A factory without a client: its informers are never started, and
	// serve only as the indexers the snapshot is added to.
	factory := informers.NewSharedInformerFactory(nil, 0)
	in := &Inspector{settings: s, view: view, factory: factory, unreadable: newKeyedStrings(s.Unreadable),
		pods: &snapshotPods{indexer: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})}}
	in.gatherer = &gatherer{view: view, memo: newConsumerFactsMemo(), judge: &rolloutJudge{decisions: s.Decisions, pods: in.pods}}
	names := s.Decisions.Kinds
	if names == nil {
		names = DefaultKindNames()
	}
	for _, name := range names {
		if k, ok := KindNamed(name); ok {
			a := newTypedAdapter(k, nil, InformerFactories{factory})
			_ = a.informer().AddIndexers(view.indexers(a))
			view.kinds.add(a)
		}
	}
	for _, t := range []plan.ConfigType{plan.TypeConfigMap, plan.TypeSecret} {
		if !s.Decisions.ignores(t) {
			view.configs[t] = unstartedIndexer()
		}
	}
	view.namespaces = unstartedIndexer()
	in.custom = &inspectedCustomKinds{view: view, kinds: s.Decisions.ExtraKinds}
	if s.Decisions.SecretsStoreCSI {
		in.providerPods = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{providerClassIndex: providerClassIndexFunc})
		view.providerClasses = func(namespace, name string) (metav1.Object, bool) {
			return providerClassOf(indexerGroup{in.providerPods}, namespace, name)
		}
	}
	return in
}

// unstartedIndexer returns an empty indexer of the objects of one type.
func unstartedIndexer() cache.Indexer {
	return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
}

// MarkUnreadable records why objects of a type ("ConfigMap", "Secret") are
// missing from the snapshot (see InspectSettings.Unreadable).
func (i *Inspector) MarkUnreadable(typ, why string) {
	i.unreadable.set(typ, why)
}

// Add adds a ConfigMap, Secret, Namespace, or built-in workload to the
// snapshot, transformed as the caches transform it (values become digests
// at once). A workload of a kind reroll does not watch is left out, as
// reroll never sees it; other objects are an error.
func (i *Inspector) Add(obj runtime.Object) error {
	cached, err := TransformForCache(obj.DeepCopyObject())
	if err != nil {
		return err
	}
	switch o := cached.(type) {
	case *corev1.ConfigMap:
		return i.addConfig(plan.TypeConfigMap, o)
	case *corev1.Secret:
		return i.addConfig(plan.TypeSecret, o)
	case *corev1.Namespace:
		return i.view.namespaces.(cache.Indexer).Add(o)
	case *cachedWorkload:
		if a, ok := i.view.kinds.get(o.Kind); ok {
			return a.informer()[0].GetIndexer().Add(o) // an inspector's groups have one member
		}
		return nil
	}
	return fmt.Errorf("cannot inspect a %T", obj)
}

// addConfig adds a ConfigMap or Secret, unless its type is ignored.
func (i *Inspector) addConfig(t plan.ConfigType, obj runtime.Object) error {
	store, ok := i.view.configs[t]
	if !ok {
		return nil
	}
	return store.(cache.Indexer).Add(obj)
}

// AddCustom adds a custom workload of kind k.
func (i *Inspector) AddCustom(u *unstructured.Unstructured, k ExtraKind) error {
	return i.custom.add(u, k)
}

// AddProviderClassPod adds a Secrets Store CSI driver's pod status.
func (i *Inspector) AddProviderClassPod(u *unstructured.Unstructured) error {
	if i.providerPods == nil {
		return nil
	}
	p, err := providerClassTransform(u.DeepCopy())
	if err != nil {
		return err
	}
	return i.providerPods.Add(p)
}

// Reference is one place a workload's pod template references a ConfigMap
// or Secret.
type Reference struct {
	// Container is "container NAME" or "initContainer NAME"; empty for a
	// volume.
	Container string `json:"container,omitempty"`
	// Field is "env[NAME]", "envFrom" or "volume NAME".
	Field string `json:"field"`
	// Object is "ConfigMap/name" or "Secret/name".
	Object string `json:"object"`
	// Keys are the keys it names; empty means every key.
	Keys     []string `json:"keys,omitempty"`
	Optional bool     `json:"optional,omitempty"`
}

// Consumed is what a workload consumes from one object.
type Consumed struct {
	Object string `json:"object"`
	// Keys are the keys consumed; empty means every key.
	Keys     []string `json:"keys,omitempty"`
	Required bool     `json:"required"`
}

// The states of WorkloadStatus.State.
const (
	StateInSync      = "in sync"
	StateWillRoll    = "will roll"
	StateHeld        = "held"
	StateBlocked     = "blocked"
	StateNotAdopted  = "not adopted yet"
	StateUnknown     = "unknown"
	StateRebaseline  = "will re-baseline"
	StateNotOptedIn  = "not opted in"
	StateNotWatched  = "not watched"
	StateBaking      = "baking"
	StateFailed      = "rollout failed"
	verdictWouldRoll = "WOULD ROLL"
	verdictNoRoll    = "no roll"
)

// WorkloadStatus is what reroll would do with one workload now.
type WorkloadStatus struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// OptedInBy lists the annotations that opt the workload in.
	OptedInBy []string   `json:"optedInBy,omitempty"`
	Consumes  []Consumed `json:"consumes,omitempty"`
	// State is one of the State constants; Reason says why.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Changed lists the objects whose consumed content changed.
	Changed []string `json:"changed,omitempty"`
}

// Entry compares, for one consumed object, what the workload recorded with
// what it would record now.
type Entry struct {
	Object   string `json:"object"`
	Recorded string `json:"recorded,omitempty"`
	Current  string `json:"current,omitempty"`
	Changed  bool   `json:"changed"`
}

// Explanation is everything about one workload.
type Explanation struct {
	WorkloadStatus
	References []Reference `json:"references"`
	// Entries compare the recorded state with the current one; empty when
	// the hash key is unknown or the workload is not adopted.
	Entries []Entry `json:"entries,omitempty"`
	// CurrentState is the reroll.dev/consumed value reroll would record
	// now; empty when the hash key is unknown.
	CurrentState string `json:"currentState,omitempty"`
}

// inspected is one workload of the snapshot, with its adapter and key.
type inspected struct {
	a   workloadAdapter
	key workloadKey
	w   workload
}

// workloads returns the snapshot's workloads by namespace, kind and name.
func (i *Inspector) workloads() []inspected {
	var out []inspected
	for _, a := range i.view.kinds.list() {
		for _, obj := range a.informer().GetIndexer().List() {
			cw, ok := obj.(*cachedWorkload)
			if !ok {
				continue
			}
			if w, err := viewWorkload(a, cw); err == nil {
				out = append(out, inspected{a: a, key: keyOfCached(a, cw), w: w})
			}
		}
	}
	slices.SortFunc(out, func(a, b inspected) int {
		return cmp.Or(cmp.Compare(a.key.name.Namespace, b.key.name.Namespace), cmp.Compare(a.key.groupKind, b.key.groupKind),
			cmp.Compare(a.key.name.Name, b.key.name.Name))
	})
	return out
}

// Status returns what reroll would do now with every opted-in workload of
// the snapshot (and those whose annotations are malformed), sorted by
// namespace, kind and name.
func (i *Inspector) Status() []WorkloadStatus {
	var out []WorkloadStatus
	mem := i.memory()
	for _, x := range i.workloads() {
		if s, _ := i.status(x, mem); s.State != StateNotOptedIn {
			out = append(out, s)
		}
	}
	return out
}

// Explain returns everything about the workload kind/namespace/name, or
// false when the snapshot does not have it.
func (i *Inspector) Explain(kind, namespace, name string) (Explanation, bool) {
	for _, x := range i.workloads() {
		if strings.EqualFold(x.w.object.(*cachedWorkload).Kind, kind) && x.key.name.Namespace == namespace && x.key.name.Name == name {
			s, v := i.status(x, i.memory())
			e := Explanation{WorkloadStatus: s, References: listReferences(x.w.references)}
			if v != nil {
				e.Entries, e.CurrentState = entries(x.w, v.plan)
			}
			return e, true
		}
	}
	return Explanation{}, false
}

// now returns the time decisions are made at.
func (i *Inspector) now() time.Time {
	if !i.settings.Now.IsZero() {
		return i.settings.Now
	}
	return time.Now()
}

// status decides, as the controller's sync would now, what reroll does with
// x, and returns the verdict it described (nil when it could not decide).
func (i *Inspector) status(x inspected, mem rollMemory) (WorkloadStatus, *verdict) {
	cw := x.w.object.(*cachedWorkload)
	s := WorkloadStatus{Kind: cw.Kind, Namespace: cw.Namespace, Name: cw.Name, OptedInBy: i.optedInBy(cw)}
	o, _, err := i.view.optInOf(x.w)
	if err == nil && !o.Enabled() {
		s.State = StateNotOptedIn
		return s, nil
	}
	if err == nil {
		if o.HasPatterns() {
			o = o.WithMatches(func(t plan.ConfigType) []string { return i.view.configNames(cw.Namespace, t) })
		}
		var unreadable string
		for _, u := range plan.CalculateConsumption(x.w.references, o) {
			s.Consumes = append(s.Consumes, Consumed{Object: u.Ref.String(), Keys: consumedKeys(u), Required: u.Required})
			if why, ok := i.unreadable.get(string(u.Ref.Type)); ok && unreadable == "" {
				unreadable = why
			}
		}
		if why, ok := i.unwatched(cw.Namespace); ok {
			s.State, s.Reason = StateNotWatched, why
			return s, nil
		}
		if why, ok := i.unreadable.get("HashKey"); ok || i.settings.HashKey == nil {
			s.State, s.Reason = StateUnknown, why
			return s, nil
		}
		if unreadable != "" {
			s.State, s.Reason = StateUnknown, unreadable
			return s, nil
		}
	}
	v := i.gatherer.decide(decision{key: x.key, w: x.w, now: i.now(), mem: mem})
	s = describeVerdict(s, v)
	if s.State == StateInSync {
		s = i.describeRollout(s, x)
	}
	return s, &v
}

// describeRollout says, of a workload in sync, where the rollout reroll
// last started stands, as the controller's judge sees it: baking, with the
// time left, or failed, and why.
func (i *Inspector) describeRollout(s WorkloadStatus, x inspected) WorkloadStatus {
	var objects []map[string]string
	if rec, err := plan.ParseRolloutRecord(x.w.meta.GetAnnotations()[plan.AnnotationRollout]); err == nil {
		for _, change := range rec.Changes {
			if obj, ok := i.view.lookupConfig(x.key.name.Namespace, plan.RefOfChange(change)); ok {
				objects = append(objects, obj.GetAnnotations())
			}
		}
	}
	judge := i.gatherer.judge
	bake, _ := judge.bakeTime(x.w, objects...)
	now := i.now()
	j := judge.judge(x.key, rolledOf(x.w), bake, now)
	switch j.State {
	case plan.RolloutBaking:
		s.State, s.Reason = StateBaking, fmt.Sprintf("%v left: %s", j.Until.Sub(now).Round(time.Second), j.Why)
	case plan.RolloutFailed:
		s.State, s.Reason = StateFailed, j.Why
	}
	return s
}

// unwatched says why reroll never syncs workloads of namespace, if it does
// not: outside --namespaces, in --ignore-namespaces, or not matched by
// --namespace-selector.
func (i *Inspector) unwatched(namespace string) (string, bool) {
	d := i.settings.Decisions
	switch {
	case len(d.Namespaces) > 0 && !slices.Contains(d.Namespaces, namespace):
		return "namespace " + namespace + " is not among --namespaces", true
	case !i.view.namespaceSelected(namespace):
		return "namespace " + namespace + " is ignored or not selected by --namespace-selector", true
	}
	return "", false
}

// describeVerdict turns the verdict v into a state and its reason.
func describeVerdict(s WorkloadStatus, v verdict) WorkloadStatus {
	p := v.plan
	if p.OptedOut {
		s.State = StateNotOptedIn
		return s
	}
	for _, pr := range p.Problems {
		if pr.Blocking {
			s.State, s.Reason = StateBlocked, pr.Reason+": "+pr.Message
			return s
		}
	}
	switch p.Decision.Action {
	case plan.ActionNone, plan.ActionRecord:
		s.State = StateInSync
	case plan.ActionAdopt:
		s.State = StateNotAdopted
	case plan.ActionRebaseline:
		s.State, s.Reason = StateRebaseline, p.Decision.Why
	case plan.ActionRoll:
		s.State = StateWillRoll
		for _, o := range v.policy.Changed {
			s.Changed = append(s.Changed, o.Ref.String())
		}
		s.Reason = "consumed content changed in " + strings.Join(s.Changed, ", ")
		if len(s.Changed) == 0 {
			s.Reason = "first sight (--roll-on-adopt)"
		}
		if v.hold.Reason != "" {
			s.State, s.Reason = StateHeld, string(v.hold.Reason)+": "+v.hold.Message
		}
	}
	return s
}

// optedInBy lists the annotations of w that opt it in.
func (i *Inspector) optedInBy(w *cachedWorkload) []string {
	var out []string
	d := i.settings.Decisions
	keys := []string{plan.AnnotationAuto, plan.AnnotationConfigMaps, plan.AnnotationSecrets}
	if d.ReloaderAnnotations {
		keys = append(keys, plan.ReloaderOptInKeys()...)
	}
	for _, k := range keys {
		if v, ok := w.Annotations[k]; ok {
			out = append(out, k+"="+v)
		} else if v, ok := w.TemplateAnnotations[k]; ok && d.ReloaderAnnotations {
			out = append(out, k+"="+v+" (pod template)")
		}
	}
	if d.AutoAll && w.Annotations[plan.AnnotationAuto] == "" {
		out = append(out, "--auto-all")
	}
	return out
}

// entries compares w's recorded state with the one plan p would record,
// and returns that one too.
func entries(w workload, p plan.Plan) ([]Entry, string) {
	if len(p.Desired.Entries) == 0 && len(p.Consumed) == 0 {
		return nil, ""
	}
	current := p.Desired.String()
	recorded, err := plan.ParseConsumedState(w.meta.GetAnnotations()[plan.AnnotationConsumed])
	if err != nil {
		return nil, current
	}
	ids := slices.Sorted(maps.Keys(recorded.Entries))
	for id := range p.Desired.Entries {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []Entry
	for _, id := range ids {
		e := Entry{Object: id, Recorded: recorded.Entries[id], Current: p.Desired.Entries[id]}
		e.Changed = e.Recorded != e.Current
		out = append(out, e)
	}
	return out, current
}

// listReferences lists every reference of a pod template.
func listReferences(refs []plan.PodReference) []Reference {
	var out []Reference
	for _, r := range refs {
		ref := Reference{Object: r.Ref.String(), Keys: r.Keys, Optional: r.Optional}
		role := "container "
		if r.Site.InitContainer {
			role = "initContainer "
		}
		switch r.Site.Field {
		case plan.SiteEnv:
			ref.Container, ref.Field = role+r.Site.Owner, "env["+r.Site.EnvName+"]"
		case plan.SiteEnvFrom:
			ref.Container, ref.Field = role+r.Site.Owner, "envFrom"
		default:
			ref.Field = "volume " + r.Site.Owner
		}
		out = append(out, ref)
	}
	return out
}

// consumedKeys returns the keys u consumes, sorted; nil for every key.
func consumedKeys(u plan.Consumption) []string {
	if u.AllKeys {
		return nil
	}
	return slices.Sorted(maps.Keys(u.Keys))
}

// keyedStrings is a map of strings safe for concurrent use.
type keyedStrings struct {
	mu sync.Mutex
	m  map[string]string
}

// newKeyedStrings returns a keyedStrings holding a copy of m.
func newKeyedStrings(m map[string]string) *keyedStrings {
	c := maps.Clone(m)
	if c == nil {
		c = map[string]string{}
	}
	return &keyedStrings{m: c}
}

// set sets k to v.
func (k *keyedStrings) set(key, v string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = v
}

// get returns the value of key.
func (k *keyedStrings) get(key string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok
}

// memory returns what the rules read beyond the snapshot: nothing of
// pacing or flaps, which only the controller remembers, and the rollouts in
// flight, counted in the snapshot as the controller's informers count them.
func (i *Inspector) memory() rollMemory {
	m := snapshotMemory{inflightSet: map[workloadKey]bool{}}
	now := i.now()
	for _, x := range i.workloads() {
		if i.view.wantsSync(x.w) && i.view.rolloutState(x.w, now) != plan.RolloutComplete {
			m.inflightSet[x.key] = true
		}
	}
	return m
}

// snapshotMemory is the rollMemory of a snapshot.
type snapshotMemory struct {
	inflightSet map[workloadKey]bool
}

// recentRolls implements rollMemory: the plugin knows none.
func (snapshotMemory) recentRolls(workloadKey) []time.Time { return nil }

// paceSlot implements rollMemory: the plugin knows no pacing.
func (snapshotMemory) paceSlot(workloadKey) time.Time { return time.Time{} }

// inflight implements rollMemory.
func (m snapshotMemory) inflight(key workloadKey) (int, bool) {
	return len(m.inflightSet), m.inflightSet[key]
}

// inspectedCustomKinds are the adapters of the custom kinds in a snapshot,
// created as their first object arrives, over unstarted informers.
type inspectedCustomKinds struct {
	mu    sync.Mutex
	view  *cacheView
	kinds []ExtraKind
}

// add adds u, a custom workload of kind k.
func (c *inspectedCustomKinds) add(u *unstructured.Unstructured, k ExtraKind) error {
	obj, err := templateTransform(k)(u.DeepCopy())
	if err != nil {
		return err
	}
	cw := obj.(*cachedWorkload)
	a, err := c.adapter(u.GroupVersionKind().GroupKind().String(), k)
	if err != nil {
		return err
	}
	return a.informer()[0].GetIndexer().Add(cw)
}

// adapter returns the adapter of group kind name, creating it.
func (c *inspectedCustomKinds) adapter(name string, k ExtraKind) (workloadAdapter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.view.kinds.get(name); ok {
		return a, nil
	}
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	a := &dynamicAdapter{name: name, path: k.TemplatePath, inf: informerGroup{inf}}
	if k.WorkloadRef {
		a.resolve = c.view.deploymentTemplate
	}
	if err := inf.AddIndexers(c.view.indexers(a)); err != nil {
		return nil, err
	}
	c.view.kinds.add(a)
	return a, nil
}

// PodQuery names the pods of a workload whose bake may not be over: the
// plugin lists them (Inspector.AddPod) so that the bake is judged with
// them, as the controller does.
type PodQuery struct {
	Namespace, Selector string
}

// PodQueries returns the pods to list: those of each workload reroll
// rolled within its rollout timeout and bake time of now.
func (i *Inspector) PodQueries() []PodQuery {
	var out []PodQuery
	now := i.now()
	for _, x := range i.workloads() {
		r := rolledOf(x.w)
		bake, _ := i.gatherer.judge.bakeTime(x.w)
		if r.selector == "" || r.started.IsZero() || !now.Before(r.started.Add(i.settings.Decisions.RolloutTimeout+bake)) {
			continue
		}
		q := PodQuery{Namespace: r.namespace, Selector: r.selector}
		if !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out
}

// AddPod adds a pod of a PodQuery.
func (i *Inspector) AddPod(p *corev1.Pod) error {
	kept, err := podTransform(p.DeepCopy())
	if err != nil {
		return err
	}
	return i.pods.indexer.Add(kept)
}

// snapshotPods is the Inspector's podSource: the pods the plugin listed.
type snapshotPods struct {
	indexer cache.Indexer
}

// health implements podSource.
func (s *snapshotPods) health(_ workloadKey, namespace, selector string, started time.Time) *plan.PodHealth {
	sel, err := labels.Parse(selector)
	if err != nil || selector == "" {
		return nil
	}
	objs, _ := s.indexer.ByIndex(cache.NamespaceIndex, namespace)
	return selectedPodHealth(objs, sel, started)
}

// release implements podSource: a snapshot keeps its pods.
func (s *snapshotPods) release(workloadKey) {}
