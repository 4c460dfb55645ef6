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
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// The inspector answers, for tools such as kubectl-reroll, what reroll sees
// and what a change would roll, from a snapshot of the cluster's objects,
// with the very functions the controller decides with: the same walk of the
// pod spec, the same opt-in parsing, the same plan. It reads nothing from
// the API itself and writes nothing.

// InspectSettings are the controller settings an inspection must share with
// the controller it explains.
type InspectSettings struct {
	// HashKey is reroll's hash key; nil when it cannot be read, and then
	// whether a workload is in sync is unknown.
	HashKey *plan.HashKey
	// AutoAll and ReloaderAnnotations are --auto-all and
	// --reloader-annotations.
	AutoAll, ReloaderAnnotations bool
	// Waves is --waves, and RolloutWindow --rollout-window, parsed.
	Waves         []plan.WaveStep
	RolloutWindow plan.Windows
	// Unreadable says, per type ("ConfigMap", "Secret", and "HashKey" for
	// the hash key), why objects of that type are missing from the
	// snapshot (a read was forbidden): a workload that needs one is then in
	// an unknown state, never guessed.
	Unreadable map[string]string
}

// Inspector holds a snapshot of workloads, ConfigMaps, Secrets and
// Namespaces, as the controller's caches would hold them. Add, AddCustom and
// MarkUnreadable are safe for concurrent use, so that a snapshot can be read
// in parallel; the questions are asked once it is complete.
type Inspector struct {
	mu       sync.Mutex
	settings InspectSettings
	// inputs builds the plan's inputs as the controller's sync does, from
	// listers over the snapshot's ConfigMaps and Secrets.
	inputs    inputBuilder
	configs   map[plan.ConfigType]cache.Indexer
	workloads []*cachedWorkload
	// namespaces holds each Namespace's annotations.
	namespaces map[string]map[string]string
}

// NewInspector returns an empty Inspector.
func NewInspector(s InspectSettings) *Inspector {
	s.Unreadable = maps.Clone(s.Unreadable)
	if s.Unreadable == nil {
		s.Unreadable = map[string]string{}
	}
	indexer := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	configs := map[plan.ConfigType]cache.Indexer{plan.TypeConfigMap: indexer(), plan.TypeSecret: indexer()}
	inputs := inputBuilder{
		optIn:   plan.OptInSettings{AutoAll: s.AutoAll, Reloader: s.ReloaderAnnotations},
		configs: map[plan.ConfigType]configStore{plan.TypeConfigMap: configs[plan.TypeConfigMap], plan.TypeSecret: configs[plan.TypeSecret]},
	}
	if s.HashKey != nil {
		inputs.hashKey = *s.HashKey
	}
	return &Inspector{settings: s, inputs: inputs, configs: configs, namespaces: map[string]map[string]string{}}
}

// MarkUnreadable records why objects of a type ("ConfigMap", "Secret") are
// missing from the snapshot (see InspectSettings.Unreadable).
func (i *Inspector) MarkUnreadable(typ, why string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.settings.Unreadable[typ] = why
}

// Add adds a ConfigMap, Secret, Namespace, or built-in workload to the
// snapshot, transformed as the caches transform it (values become digests
// at once). Other objects are an error.
func (i *Inspector) Add(obj runtime.Object) error {
	// The transform (the hashing of every value) runs outside the lock.
	cached, err := TransformForCache(obj.DeepCopyObject())
	if err != nil {
		return err
	}
	switch o := cached.(type) {
	case *corev1.ConfigMap:
		return i.configs[plan.TypeConfigMap].Add(o)
	case *corev1.Secret:
		return i.configs[plan.TypeSecret].Add(o)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	switch o := cached.(type) {
	case *corev1.Namespace:
		i.namespaces[o.Name] = o.Annotations
	case *cachedWorkload:
		i.workloads = append(i.workloads, o)
	default:
		return fmt.Errorf("cannot inspect a %T", obj)
	}
	return nil
}

// AddCustom adds a custom workload of kind k.
func (i *Inspector) AddCustom(u *unstructured.Unstructured, k ExtraKind) {
	w, _ := templateTransform(k)(u.DeepCopy())
	i.mu.Lock()
	defer i.mu.Unlock()
	i.workloads = append(i.workloads, w.(*cachedWorkload))
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

// Status returns what reroll would do now with every opted-in workload of
// the snapshot (and those whose annotations are malformed), sorted by
// namespace, kind and name.
func (i *Inspector) Status() []WorkloadStatus {
	var out []WorkloadStatus
	for _, w := range i.sortedWorkloads() {
		if s := i.status(w); s.State != StateNotOptedIn {
			out = append(out, s)
		}
	}
	return out
}

// Explain returns everything about the workload kind/namespace/name, or
// false when the snapshot does not have it.
func (i *Inspector) Explain(kind, namespace, name string) (Explanation, bool) {
	for _, w := range i.workloads {
		if strings.EqualFold(w.Kind, kind) && w.Namespace == namespace && w.Name == name {
			e := Explanation{WorkloadStatus: i.status(w), References: references(w)}
			e.Entries, e.CurrentState = i.entries(w)
			return e, true
		}
	}
	return Explanation{}, false
}

// sortedWorkloads returns the snapshot's workloads by namespace, kind and
// name.
func (i *Inspector) sortedWorkloads() []*cachedWorkload {
	ws := slices.Clone(i.workloads)
	slices.SortFunc(ws, func(a, b *cachedWorkload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return ws
}

// status decides, with the controller's plan, what reroll would do with cw.
func (i *Inspector) status(cw *cachedWorkload) WorkloadStatus {
	w := workloadOf(cw)
	s := WorkloadStatus{Kind: cw.Kind, Namespace: cw.Namespace, Name: cw.Name, OptedInBy: i.optedInBy(cw)}
	o, _, err := i.inputs.optInOf(w)
	if err != nil {
		s.State, s.Reason = StateBlocked, plan.ReasonInvalidAnnotation+": "+err.Error()
		return s
	}
	if !o.Enabled() {
		s.State = StateNotOptedIn
		return s
	}
	var unreadable string
	for _, u := range plan.CalculateConsumption(cw.References, o) {
		s.Consumes = append(s.Consumes, Consumed{Object: u.Ref.String(), Keys: consumedKeys(u), Required: u.Required})
		if why, ok := i.settings.Unreadable[string(u.Ref.Type)]; ok && unreadable == "" {
			unreadable = why
		}
	}
	switch {
	case i.settings.HashKey == nil:
		s.State, s.Reason = StateUnknown, i.settings.Unreadable["HashKey"]
		return s
	case unreadable != "":
		s.State, s.Reason = StateUnknown, unreadable
		return s
	}
	current := map[plan.ConfigRef]map[string]string{}
	p := plan.Compute(i.inputs.planInput(w, current), i.inputs.settings())
	return i.describePlan(s, w, p, current)
}

// describePlan turns a plan of w, made on the digests current, into a state
// and its reason.
func (i *Inspector) describePlan(s WorkloadStatus, w workload, p plan.Plan, current map[plan.ConfigRef]map[string]string) WorkloadStatus {
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
		changed := i.inputs.changedObjects(s.Namespace, p, current)
		for _, o := range changed {
			s.Changed = append(s.Changed, o.Ref.String())
		}
		s.Reason = "consumed content changed in " + strings.Join(s.Changed, ", ")
		if h := i.pauseHold(w, changed); h.Reason != "" {
			s.State, s.Reason = StateHeld, string(h.Reason)+": "+h.Message
		}
	}
	return s
}

// pauseHold is the hold the controller's pause and window rules find on w,
// its Namespace or the changed objects, now.
func (i *Inspector) pauseHold(w workload, changed []plan.ChangedObject) plan.Hold {
	in := plan.PolicyInput{Now: time.Now(), WorkloadAnnotations: w.meta.GetAnnotations(),
		NamespaceAnnotations: i.namespaces[w.meta.GetNamespace()], Changed: changed}
	in.Windows = plan.WindowsOf(in, i.settings.RolloutWindow)
	return plan.Judge(in, []plan.Rule{plan.PauseRule, plan.WindowRule})
}

// optedInBy lists the annotations of w that opt it in.
func (i *Inspector) optedInBy(w *cachedWorkload) []string {
	var out []string
	keys := []string{plan.AnnotationAuto, plan.AnnotationConfigMaps, plan.AnnotationSecrets}
	if i.settings.ReloaderAnnotations {
		keys = append(keys, plan.ReloaderOptInKeys()...)
	}
	for _, k := range keys {
		if v, ok := w.Annotations[k]; ok {
			out = append(out, k+"="+v)
		} else if v, ok := w.TemplateAnnotations[k]; ok && i.settings.ReloaderAnnotations {
			out = append(out, k+"="+v+" (pod template)")
		}
	}
	if i.settings.AutoAll && w.Annotations[plan.AnnotationAuto] == "" {
		out = append(out, "--auto-all")
	}
	return out
}

// entries compares w's recorded state with the one it would record now,
// and returns that one too.
func (i *Inspector) entries(w *cachedWorkload) ([]Entry, string) {
	o, _, err := i.inputs.optInOf(workloadOf(w))
	if err != nil || i.settings.HashKey == nil {
		return nil, ""
	}
	recorded, recordedErr := plan.ParseConsumedState(w.Annotations[plan.AnnotationConsumed])
	var previous *plan.ConsumedState
	if recordedErr == nil {
		previous = &recorded
	}
	current, _ := plan.CalculateState(*i.settings.HashKey, plan.CalculateConsumption(w.References, o), i.inputs.lookup(w.Namespace, map[plan.ConfigRef]map[string]string{}), previous, false)
	if recordedErr != nil {
		return nil, current.String()
	}
	var out []Entry
	for _, id := range slices.Sorted(maps.Keys(mergeKeys(recorded.Entries, current.Entries))) {
		e := Entry{Object: id, Recorded: recorded.Entries[id], Current: current.Entries[id]}
		e.Changed = e.Recorded != e.Current
		out = append(out, e)
	}
	return out, current.String()
}

// mergeKeys returns the union of two maps' keys, as a set.
func mergeKeys(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// references lists every reference of w's pod template.
func references(w *cachedWorkload) []Reference {
	var out []Reference
	for _, r := range w.References {
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

// ImpactRow says what a change of one object would do to one workload that
// references it.
type ImpactRow struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Verdict is "WOULD ROLL" or "no roll".
	Verdict string `json:"verdict"`
	// Keys are the consumed keys that change (WOULD ROLL), or that the
	// workload consumes (no change given).
	Keys []string `json:"keys,omitempty"`
	// Reason says why not, for "no roll".
	Reason string `json:"reason,omitempty"`
	// Wave is the wave the workload rolls in (1 first), 0 without waves.
	Wave int `json:"wave,omitempty"`
}

// Impact says what replacing the ConfigMap or Secret kind/namespace/name of
// the snapshot with next would roll: one row per workload that references
// it. With next nil, the rows list what each consumer consumes.
func (i *Inspector) Impact(kind, namespace, name string, next runtime.Object) ([]ImpactRow, error) {
	ref := plan.ConfigRef{Type: plan.ConfigType(kind), Name: name}
	if ref.Type != plan.TypeConfigMap && ref.Type != plan.TypeSecret {
		return nil, fmt.Errorf("impact takes a ConfigMap or a Secret, not a %s", kind)
	}
	var before, after metav1.Object
	if obj, ok := i.inputs.configObject(namespace, ref); ok {
		before = obj
	}
	if next != nil {
		cached, err := TransformForCache(next.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		after = cached.(metav1.Object)
	}
	var rows []ImpactRow
	for _, w := range i.sortedWorkloads() {
		if w.Namespace != namespace || !slices.ContainsFunc(w.References, func(r plan.PodReference) bool { return r.Ref == ref }) &&
			!i.namesObject(w, ref) {
			continue
		}
		rows = append(rows, i.impactOn(w, ref, before, after))
	}
	i.assignWaves(rows, after)
	return rows, nil
}

// namesObject reports whether w consumes ref by name (an annotation).
func (i *Inspector) namesObject(w *cachedWorkload, ref plan.ConfigRef) bool {
	o, _, err := i.inputs.optInOf(workloadOf(w))
	if err != nil {
		return false
	}
	names := o.ConfigMaps
	if ref.Type == plan.TypeSecret {
		names = o.Secrets
	}
	return slices.Contains(names, ref.Name)
}

// impactOn says what the change of ref from before to after does to w, by
// the controller's rules: opt-in, consumption, ignore, key granularity,
// pause.
func (i *Inspector) impactOn(w *cachedWorkload, ref plan.ConfigRef, before, after metav1.Object) ImpactRow {
	row := ImpactRow{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Verdict: verdictNoRoll}
	o, _, err := i.inputs.optInOf(workloadOf(w))
	if err != nil {
		row.Reason = "blocked: " + plan.ReasonInvalidAnnotation
		return row
	}
	if !o.Enabled() {
		row.Reason = "workload not opted in"
		return row
	}
	var u *plan.Consumption
	for _, c := range plan.CalculateConsumption(w.References, o) {
		if c.Ref == ref {
			u = &c
		}
	}
	switch {
	case u == nil:
		row.Reason = "not consumed (excluded, or not watched by its opt-in)"
		return row
	case after == nil:
		row.Keys, row.Verdict = consumedKeys(*u), ""
		return row
	case u.NeedsMatch && after.GetAnnotations()[plan.ReloaderMatch] != "true":
		row.Reason = "not consumed: no " + plan.ReloaderMatch + " annotation (search mode)"
		return row
	}
	if ignored, _ := plan.IsIgnored(after.GetAnnotations(), i.settings.ReloaderAnnotations); ignored {
		row.Reason = "object ignored"
		return row
	}
	var old map[string]string
	if before != nil {
		old = plan.CachedDigests(before)
	}
	row.Keys = plan.ChangedKeys(*u, old, plan.CachedDigests(after))
	if len(row.Keys) == 0 {
		row.Reason = "unconsumed keys only"
		return row
	}
	if h := i.pauseHold(workloadOf(w), []plan.ChangedObject{{Ref: ref, Annotations: after.GetAnnotations()}}); h.Reason != "" {
		row.Reason = "held (" + string(h.Reason) + "): " + h.Message
		return row
	}
	row.Verdict = verdictWouldRoll
	return row
}

// assignWaves numbers the waves of the rows that would roll, in the order
// and sizes the controller uses, when the changed object (or --waves) sets
// waves.
func (i *Inspector) assignWaves(rows []ImpactRow, after metav1.Object) {
	if after == nil {
		return
	}
	steps, err := plan.WavesOf(after.GetAnnotations(), i.settings.Waves)
	if err != nil || steps == nil {
		return
	}
	var rolling []int
	for n := range rows {
		if rows[n].Verdict == verdictWouldRoll {
			rolling = append(rolling, n)
		}
	}
	priority := func(n int) int {
		for _, w := range i.workloads {
			if w.Kind == rows[n].Kind && w.Namespace == rows[n].Namespace && w.Name == rows[n].Name {
				p, _ := plan.ParseWavePriority(w.Annotations)
				return p
			}
		}
		return 0
	}
	plan.SortWaveMembers(rolling, func(n int) (plan.WorkloadID, int) {
		return plan.WorkloadID{Kind: rows[n].Kind, Namespace: rows[n].Namespace, Name: rows[n].Name}, priority(n)
	})
	sizes := plan.CalculateWaveSizes(steps, len(rolling))
	for pos, n := range rolling {
		rows[n].Wave = plan.WaveOf(pos, sizes) + 1
	}
}
