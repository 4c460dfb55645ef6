package controller

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/reroll/reroll/pkg/plan"
)

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
//
// It decides as the controller would once the change reached its caches:
// the snapshot with next in place of the object goes through the same
// decide, and a consumer not adopted yet compares against the object as it
// is now, as the controller's change tracker keeps it.
func (i *Inspector) Impact(kind, namespace, name string, next runtime.Object) ([]ImpactRow, error) {
	ref := plan.ConfigRef{Type: plan.ConfigType(kind), Name: name}
	if ref.Type != plan.TypeConfigMap && ref.Type != plan.TypeSecret {
		return nil, fmt.Errorf("impact takes a ConfigMap or a Secret, not a %s", kind)
	}
	before, _ := i.view.lookupConfig(namespace, ref)
	var after metav1.Object
	if next != nil {
		cached, err := TransformForCache(next.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		after = cached.(metav1.Object)
	}
	g := i.gatherer
	if after != nil {
		g = i.changedTo(ref, after)
	}
	mem := i.memory()
	var rows []ImpactRow
	for _, x := range i.workloads() {
		if x.key.name.Namespace != namespace || !i.references(x.w, ref) {
			continue
		}
		row := ImpactRow{Kind: x.key.groupKind, Namespace: namespace, Name: x.key.name.Name, Verdict: verdictNoRoll}
		if after == nil {
			rows = append(rows, i.consumption(row, x.w, ref))
			continue
		}
		d := decision{key: x.key, w: x.w, now: i.now(), mem: mem}
		if _, adopted := x.w.meta.GetAnnotations()[plan.AnnotationConsumed]; !adopted && before != nil {
			d.before = map[plan.ConfigRef]metav1.Object{ref: before}
		}
		rows = append(rows, i.impactOn(row, x.w, ref, before, after, g.decide(d)))
	}
	return rows, nil
}

// changedTo returns a gatherer over the snapshot with after in place of
// ref, in after's namespace.
func (i *Inspector) changedTo(ref plan.ConfigRef, after metav1.Object) *gatherer {
	view := *i.view
	view.configs = map[plan.ConfigType]configStore{}
	for t, s := range i.view.configs {
		view.configs[t] = s
	}
	if s, ok := view.configs[ref.Type]; ok {
		view.configs[ref.Type] = overlayStore{configStore: s, key: after.GetNamespace() + "/" + after.GetName(), obj: after}
	}
	return &gatherer{view: &view, memo: newConsumerFactsMemo(), judge: i.gatherer.judge}
}

// overlayStore is a configStore with one object replaced.
type overlayStore struct {
	configStore
	key string
	obj metav1.Object
}

// GetByKey implements configStore.
func (s overlayStore) GetByKey(key string) (any, bool, error) {
	if key == s.key {
		return s.obj, true, nil
	}
	return s.configStore.GetByKey(key)
}

// List implements configStore.
func (s overlayStore) List() []any {
	out := []any{s.obj}
	for _, o := range s.configStore.List() {
		if m, ok := o.(metav1.Object); !ok || m.GetNamespace()+"/"+m.GetName() != s.key {
			out = append(out, o)
		}
	}
	return out
}

// references reports whether w's template or opt-in names ref, or its
// Reloader patterns match it.
func (i *Inspector) references(w workload, ref plan.ConfigRef) bool {
	if slices.ContainsFunc(w.references, func(r plan.PodReference) bool { return r.Ref == ref }) {
		return true
	}
	o, _, err := i.view.optInOf(w)
	if err != nil {
		return false
	}
	names := o.ConfigMaps
	if ref.Type == plan.TypeSecret {
		names = o.Secrets
	}
	return slices.Contains(names, ref.Name) || o.Matches(ref)
}

// consumedOf returns what w consumes of ref, if it is opted in and does.
func (i *Inspector) consumedOf(w workload, ref plan.ConfigRef) (*plan.Consumption, string) {
	o, _, err := i.view.optInOf(w)
	switch {
	case err != nil:
		return nil, "blocked: " + plan.ReasonInvalidAnnotation
	case !o.Enabled():
		return nil, "workload not opted in"
	}
	if o.HasPatterns() {
		o = o.WithMatches(func(t plan.ConfigType) []string { return i.view.configNames(w.meta.GetNamespace(), t) })
	}
	for _, u := range plan.CalculateConsumption(w.references, o) {
		if u.Ref == ref {
			return &u, ""
		}
	}
	return nil, "not consumed (excluded, or not watched by its opt-in)"
}

// consumption fills in row with what w consumes of ref.
func (i *Inspector) consumption(row ImpactRow, w workload, ref plan.ConfigRef) ImpactRow {
	u, why := i.consumedOf(w, ref)
	if u == nil {
		row.Reason = why
		return row
	}
	row.Keys, row.Verdict = consumedKeys(*u), ""
	return row
}

// impactOn fills in row with what the change of ref from before to after
// does to w, by v, the controller's verdict on the snapshot with the
// change. The reasons of a row that does not roll explain that verdict.
func (i *Inspector) impactOn(row ImpactRow, w workload, ref plan.ConfigRef, before, after metav1.Object, v verdict) ImpactRow {
	u, why := i.consumedOf(w, ref)
	var old map[string]string
	if before != nil {
		old = plan.CachedDigests(before)
	}
	if u != nil {
		row.Keys = plan.ChangedKeys(*u, old, plan.CachedDigests(after))
	}
	o := slices.IndexFunc(v.policy.Changed, func(o plan.ChangedObject) bool { return o.Ref == ref })
	switch {
	case u == nil:
		row.Reason, row.Keys = why, nil
	case v.plan.Blocked:
		row.Reason, row.Keys = "blocked: "+firstBlocking(v.plan), nil
	case u.NeedsMatch && after.GetAnnotations()[plan.ReloaderMatch] != "true":
		row.Reason, row.Keys = "not consumed: no "+plan.ReloaderMatch+" annotation (search mode)", nil
	case v.plan.Decision.Action == plan.ActionAdopt:
		row.Reason, row.Keys = "not adopted yet: reroll records the new content as its baseline", nil
	case o < 0 && isIgnored(after, i.settings.Decisions.ReloaderAnnotations):
		row.Reason, row.Keys = "object ignored", nil
	case o < 0:
		row.Reason, row.Keys = "unconsumed keys only", nil
	case holdsUntilSomeoneActs(v.hold.Reason):
		row.Reason, row.Keys = "held ("+string(v.hold.Reason)+"): "+v.hold.Message, nil
	default:
		// Rolls now, or once its wave comes, a place in flight frees or its
		// pacing slot comes: those holds end by themselves.
		row.Verdict = verdictWouldRoll
		row.Wave = plan.WaveOfMember(v.policy.Changed[o], row.id())
		if v.hold.Reason != "" && v.hold.Reason != plan.HoldWave {
			row.Reason = string(v.hold.Reason) + ": " + v.hold.Message
		}
	}
	return row
}

// holdsUntilSomeoneActs reports whether a hold of reason r keeps a change
// from rolling until an operator or the cluster acts: a pause, a closed
// window, a halt or a malformed annotation. The other holds (waves, the
// in-flight cap, pacing, the flap breaker) end by themselves.
func holdsUntilSomeoneActs(r plan.HoldReason) bool {
	switch r {
	case plan.HoldPaused, plan.HoldWindow, plan.HoldHalted, plan.HoldInvalid:
		return true
	}
	return false
}

// id returns the workload the row is about.
func (r ImpactRow) id() plan.WorkloadID {
	return plan.WorkloadID{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// isIgnored reports whether an object is ignored (reroll.dev/ignore, or
// Reloader's with reloader).
func isIgnored(obj metav1.Object, reloader bool) bool {
	ignored, _ := plan.IsIgnored(obj.GetAnnotations(), reloader)
	return ignored
}

// firstBlocking returns the reason of the first blocking problem of p.
func firstBlocking(p plan.Plan) string {
	for _, pr := range p.Problems {
		if pr.Blocking {
			return pr.Reason
		}
	}
	return ""
}
