package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/flags"
	"github.com/reroll/reroll/pkg/plan"
	"github.com/reroll/reroll/pkg/plan/plantest"
)

// The plugin promises the controller's own decisions. TestInspectorAgrees
// runs the controller's sync and the Inspector over the same cluster, under
// each decision-changing setting, and requires the same verdict for every
// workload: roll, adopt, re-baseline, hold, block, or nothing.
//
// Each case starts from a cluster the controller has adopted under the
// case's settings (phase 1: every watched workload synced once against the
// old content), then changes it (phase 2: ConfigMap cfg and Secret sec
// change, ConfigMap gone is deleted, Deployment late appears), and asks
// both. The controller's caches hold what its informers would list: the
// objects of watched namespaces, kinds and types, the config objects its
// selector selects; the plugin lists every namespace and the config objects
// of the same selector, and must find the rest unwatched.
//
// Not here: --extra-kinds and --secrets-store-csi, whose informers are
// dynamic (TestSyncCustomKind; end to end TestCustomKindInstalledLater and
// TestSecretsStoreCSIRotationRollsOnce), and
// --max-rollouts-per-second, whose pacing slots live in the controller's
// memory only: the plugin cannot see them.
func TestInspectorAgrees(t *testing.T) {
	cases := []struct {
		name  string
		flags map[string]string
	}{
		{"defaults", nil},
		{"auto-all", map[string]string{"auto-all": "true"}},
		{"reloader-annotations", map[string]string{"reloader-annotations": "true"}},
		{"roll-on-adopt", map[string]string{"roll-on-adopt": "true"}},
		{"reload-on-delete", map[string]string{"reload-on-delete": "true"}},
		{"resources-to-ignore", map[string]string{"resources-to-ignore": "secrets"}},
		{"kinds", map[string]string{"kinds": "deployments"}},
		{"namespaces", map[string]string{"namespaces": testNamespace}},
		{"namespace-selector", map[string]string{"namespace-selector": "tier=a"}},
		{"ignore-namespaces", map[string]string{"ignore-namespaces": "team-b"}},
		{"config-selector", map[string]string{"config-selector": "reroll=yes"}},
		{"waves", map[string]string{"waves": "1,100%"}},
		{"rollout-window", map[string]string{"rollout-window": "Sun 00:00-00:01 UTC"}},
		{"rollout-timeout", map[string]string{"rollout-timeout": "1m"}},
		{"max-inflight-rollouts", map[string]string{"max-inflight-rollouts": "1"}},
		{"max-rolls-per-workload", map[string]string{"max-rolls-per-workload": "1/1h"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Decisions
			table := &flags.Set{}
			table.Section("", DecisionFlags(&d)...)
			if _, err := table.Load(tc.flags); err != nil {
				t.Fatal(err)
			}
			if err := table.Validate(); err != nil {
				t.Fatal(err)
			}
			a := newAgreement(t, d)
			a.adopt()
			a.change()
			// The inspector first: the syncs write.
			inspected := a.inspectorVerdicts()
			synced := a.syncVerdicts()
			for _, name := range a.names() {
				if synced[name] != inspected[name] {
					t.Errorf("%s: the sync %s, the inspector says %s", name, synced[name], inspected[name])
				}
			}
			t.Logf("verdicts: %v", synced)
		})
	}
}

// agreement is one case of TestInspectorAgrees.
type agreement struct {
	t   *testing.T
	f   *fixture
	d   Decisions
	ctx context.Context
	// objects are the cluster's objects by "kind/namespace/name".
	objects map[string]runtime.Object
}

// The verdicts of the sync and the inspector.
const (
	verdictRoll       = "rolls"
	verdictAdopt      = "adopts"
	verdictRebaseline = "re-baselines"
	verdictHold       = "holds"
	verdictBlock      = "blocks"
	verdictQuiet      = "does nothing"
)

// newAgreement returns a case over the cluster agreementCluster, under
// decisions d.
func newAgreement(t *testing.T, d Decisions) *agreement {
	a := &agreement{t: t, d: d, objects: map[string]runtime.Object{}}
	for _, obj := range agreementCluster(t) {
		a.objects[objectKey(obj)] = obj
	}
	a.f = newFixture(t)
	a.f.opts.Decisions = d
	a.ctx = a.f.start()
	for _, obj := range a.objects {
		a.put(obj)
	}
	return a
}

// objectKey names an object.
func objectKey(obj runtime.Object) string {
	m, _ := metaOf(obj)
	return fmt.Sprintf("%T/%s/%s", obj, m.GetNamespace(), m.GetName())
}

// agreementCluster returns the cluster of every case, before its change:
// in team-a, ConfigMaps cfg and gone (labelled reroll=yes) and Secret sec,
// and their consumers; in team-b, a copy of cfg and a consumer.
//
// Long: the fixture itself, one object per line or two.
func agreementCluster(t *testing.T) []runtime.Object {
	cfg := configMap("cfg", map[string]string{"a": "1", "b": "1"})
	cfg.Labels = map[string]string{"reroll": "yes"}
	gone := configMap("gone", map[string]string{"g": "1"})
	gone.Labels = map[string]string{"reroll": "yes"}
	sec := secret("sec", map[string]string{"t": "1"})
	readKey := func(cm, key string) func(*corev1.PodSpec) {
		return func(s *corev1.PodSpec) {
			s.Containers[0].Env = append(s.Containers[0].Env, plantest.ConfigMapKeyEnv(strings.ToUpper(key), cm, key, false))
		}
	}
	paused := auto()
	paused[plan.AnnotationPaused] = "true"
	regex := map[string]string{"configmap.reloader.stakater.com/reload": "cf.*"}
	canary := deployment("canary", auto(), envFromConfigMap("cfg"))
	setComplete(canary)
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "sts", Namespace: testNamespace, Annotations: auto(), ResourceVersion: "10", Generation: 1},
		Spec: appsv1.StatefulSetSpec{Replicas: new(int32(1)), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}}}
	envFromConfigMap("cfg")(&sts.Spec.Template.Spec)
	other := deployment("other", auto(), envFromConfigMap("cfg"))
	other.Namespace = "team-b"
	otherCfg := cfg.DeepCopy()
	otherCfg.Namespace = "team-b"
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace, Labels: map[string]string{"tier": "a"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b", Labels: map[string]string{"tier": "b"}}},
		cfg, gone, sec, otherCfg,
		deployment("reads-a", auto(), readKey("cfg", "a")),
		deployment("reads-b", auto(), readKey("cfg", "b")),
		deployment("reads-sec", auto(), func(s *corev1.PodSpec) {
			s.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}}}
		}),
		deployment("reads-gone", auto(), readKey("gone", "g")),
		deployment("plain", nil, envFromConfigMap("cfg")),
		deployment("named", map[string]string{plan.AnnotationConfigMaps: "cfg"}, nil),
		deployment("reloader-regex", regex, envFromConfigMap("cfg")),
		deployment("paused", paused, envFromConfigMap("cfg")),
		canary, sts, other,
	}
	for _, obj := range objs {
		if d, ok := obj.(*appsv1.Deployment); ok && d.Name != "canary" {
			setProgressing(d)
		}
	}
	return objs
}

// watchedByInformers reports whether reroll's informers list obj under the
// case's settings: the API server filters namespaces, kinds, types and the
// config selector before anything reaches a cache.
func (a *agreement) watchedByInformers(obj runtime.Object) bool {
	m, _ := metaOf(obj)
	ns := m.GetNamespace()
	if _, isNamespace := obj.(*corev1.Namespace); isNamespace {
		ns = m.GetName()
	}
	if (len(a.d.Namespaces) > 0 && !slices.Contains(a.d.Namespaces, ns)) || slices.Contains(a.d.IgnoreNamespaces, ns) {
		return false
	}
	return a.listedByPlugin(obj)
}

// listedByPlugin reports whether the plugin's snapshot lists obj: the
// config objects of a watched type its selector selects, and every
// workload and Namespace.
func (a *agreement) listedByPlugin(obj runtime.Object) bool {
	m, _ := metaOf(obj)
	selector, _ := labels.Parse(a.d.ConfigSelector)
	switch obj.(type) {
	case *corev1.ConfigMap:
		return !a.d.ignores(plan.TypeConfigMap) && selector.Matches(labels.Set(m.GetLabels()))
	case *corev1.Secret:
		return !a.d.ignores(plan.TypeSecret) && selector.Matches(labels.Set(m.GetLabels()))
	}
	return true
}

// put puts obj into the fake API server and, if the informers list it,
// into the controller's cache, as an informer event would, status handler
// included.
func (a *agreement) put(obj runtime.Object) {
	a.objects[objectKey(obj)] = obj
	if !a.watchedByInformers(obj) {
		if err := a.f.client.Tracker().Add(obj.DeepCopyObject()); err != nil {
			m, _ := metaOf(obj)
			_ = a.f.client.Tracker().Update(gvrOf(obj), obj.DeepCopyObject(), m.GetNamespace())
		}
		return
	}
	a.f.seed(obj)
	if k, ok := a.keyOf(obj); ok {
		adapter, _ := a.f.c.view.kinds.get(k.groupKind)
		cached, _ := TransformForCache(obj.DeepCopyObject())
		a.f.c.observeRollout(a.ctx, adapter, nil, cached)
	}
}

// keyOf returns the queue key of a workload the controller watches.
func (a *agreement) keyOf(obj runtime.Object) (workloadKey, bool) {
	cw, ok := cachedForm(obj)
	if !ok {
		return workloadKey{}, false
	}
	if _, watched := a.f.c.view.kinds.get(cw.Kind); !watched || !a.watchedByInformers(obj) {
		return workloadKey{}, false
	}
	return workloadKey{groupKind: cw.Kind, name: cache.ObjectName{Namespace: cw.Namespace, Name: cw.Name}}, true
}

// workloads returns the cluster's workloads, sorted by key.
func (a *agreement) workloads() []runtime.Object {
	var out []runtime.Object
	for _, k := range slices.Sorted(mapsKeys(a.objects)) {
		if _, ok := cachedForm(a.objects[k]); ok {
			out = append(out, a.objects[k])
		}
	}
	return out
}

// mapsKeys returns an iterator over m's keys.
func mapsKeys(m map[string]runtime.Object) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// names returns "namespace/name" of every workload.
func (a *agreement) names() []string {
	var out []string
	for _, w := range a.workloads() {
		m, _ := metaOf(w)
		out = append(out, m.GetNamespace()+"/"+m.GetName())
	}
	return out
}

// syncOne syncs obj's key and returns its patch bodies and Events.
func (a *agreement) syncOne(obj runtime.Object) (patches, events []string) {
	a.f.client.ClearActions()
	a.f.events()
	k, ok := a.keyOf(obj)
	if !ok {
		return nil, nil
	}
	if err := a.f.c.syncHandler(a.ctx, k); err != nil {
		a.t.Fatalf("sync %s: %v", k, err)
	}
	for _, act := range a.f.client.Actions() {
		if p, ok := act.(core.PatchAction); ok {
			patches = append(patches, string(p.GetPatch()))
		}
	}
	return patches, a.f.events()
}

// adopt is phase 1: every watched workload synced once against the old
// content, its write applied, and cached again.
func (a *agreement) adopt() {
	for _, w := range a.workloads() {
		if patches, _ := a.syncOne(w); len(patches) > 0 {
			a.put(a.fetch(w))
		}
	}
	// The canary rolled for the coming change of cfg (see change), and
	// failed: it halts that change under a short --rollout-timeout.
	a.f.opts.Clock.(interface{ Step(time.Duration) }).Step(5 * time.Minute)
}

// fetch returns obj as the fake API server holds it now.
func (a *agreement) fetch(obj runtime.Object) runtime.Object {
	m, _ := metaOf(obj)
	got, err := a.f.client.Tracker().Get(gvrOf(obj), m.GetNamespace(), m.GetName())
	if err != nil {
		a.t.Fatal(err)
	}
	return got
}

// change is phase 2: cfg and sec change, gone is deleted, late appears, and
// the StatefulSet sts, which reroll rolled for the change of cfg five
// minutes ago, is still rolling out (failed under a 1m --rollout-timeout).
func (a *agreement) change() {
	cfg := a.objects[objectKey(configMap("cfg", nil))].(*corev1.ConfigMap).DeepCopy()
	cfg.Data["a"], cfg.ResourceVersion = "2", "2"
	a.put(cfg)
	sec := a.objects[objectKey(secret("sec", nil))].(*corev1.Secret).DeepCopy()
	sec.Data["t"], sec.ResourceVersion = []byte("2"), "2"
	a.put(sec)
	gone := a.objects[objectKey(configMap("gone", nil))]
	delete(a.objects, objectKey(gone))
	_ = a.f.client.Tracker().Delete(gvrOf(gone), testNamespace, "gone")
	if a.watchedByInformers(gone) {
		_ = a.f.informerFor(gone).GetIndexer().Delete(gone)
	}
	late := deployment("late", auto(), envFromConfigMap("cfg"))
	setProgressing(late)
	a.put(late)
	sts := a.objects[objectKey(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "sts", Namespace: testNamespace}})].(*appsv1.StatefulSet).DeepCopy()
	if _, adopted := sts.Annotations[plan.AnnotationConsumed]; adopted {
		started := a.f.opts.Clock.Now().Add(-5 * time.Minute)
		change := plan.CalculateChangeID(a.f.opts.HashKey, plan.ConfigRef{Type: plan.TypeConfigMap, Name: "cfg"}, plan.CachedDigests(mustTransform(a.t, cfg)))
		sts.Annotations[plan.AnnotationRollout] = plan.RolloutRecord{Started: started, FromComplete: true, Changes: []plan.ChangeID{change}}.String()
		sts.Annotations[plan.AnnotationConsumed] = a.f.recordedStateOf(sts.Annotations, &sts.Spec.Template.Spec)
		sts.Generation, sts.ResourceVersion = 2, "20"
		a.put(sts)
	}
}

// mustTransform returns obj as the caches hold it.
func mustTransform(t *testing.T, obj runtime.Object) runtime.Object {
	cached, err := TransformForCache(obj.DeepCopyObject())
	if err != nil {
		t.Fatal(err)
	}
	return cached.(runtime.Object)
}

// syncVerdicts syncs every workload and says what each sync did.
func (a *agreement) syncVerdicts() map[string]string {
	verdicts := map[string]string{}
	for _, w := range a.workloads() {
		m, _ := metaOf(w)
		_, adopted := m.GetAnnotations()[plan.AnnotationConsumed]
		patches, events := a.syncOne(w)
		verdict := classifySync(patches, events, adopted)
		if k, ok := a.keyOf(w); ok && verdict == verdictQuiet && slices.Contains(a.f.c.memory.holds.heldFor(plan.HoldReasons()...), k) {
			verdict = verdictHold // held since phase 1, whose Event said so
		}
		verdicts[m.GetNamespace()+"/"+m.GetName()] = verdict
	}
	return verdicts
}

// classifySync names what one sync did, from its writes and Events.
func classifySync(patches, events []string, adopted bool) string {
	has := func(prefix string) bool {
		return slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, prefix) })
	}
	switch {
	case slices.ContainsFunc(patches, func(p string) bool {
		return strings.Contains(p, plan.AnnotationConfigHash) || strings.Contains(p, "restartAt")
	}):
		return verdictRoll
	case len(patches) > 0 && !adopted:
		return verdictAdopt
	case len(patches) > 0 && has(plan.ReasonRebaselined):
		return verdictRebaseline
	case has(plan.ReasonRolloutHeld) || has(plan.ReasonRolloutHalted) || has(plan.ReasonRolloutThrottled):
		return verdictHold
	case has("Warning"):
		return verdictBlock
	}
	return verdictQuiet
}

// inspectorVerdicts asks an Inspector over a snapshot of the cluster, as
// the plugin lists it, what reroll does with every workload.
func (a *agreement) inspectorVerdicts() map[string]string {
	key := a.f.opts.HashKey
	in := NewInspector(InspectSettings{Decisions: a.d, HashKey: &key, Now: a.f.opts.Clock.Now()})
	for _, obj := range a.objects {
		if a.listedByPlugin(obj) {
			mustAdd(a.t, in, a.fetch(obj))
		}
	}
	verdicts := map[string]string{}
	for _, name := range a.names() {
		verdicts[name] = verdictQuiet
	}
	for _, s := range in.Status() {
		switch s.State {
		case StateWillRoll:
			verdicts[s.Namespace+"/"+s.Name] = verdictRoll
		case StateNotAdopted:
			verdicts[s.Namespace+"/"+s.Name] = verdictAdopt
		case StateRebaseline:
			verdicts[s.Namespace+"/"+s.Name] = verdictRebaseline
		case StateHeld:
			verdicts[s.Namespace+"/"+s.Name] = verdictHold
		case StateBlocked:
			verdicts[s.Namespace+"/"+s.Name] = verdictBlock
		case StateInSync, StateNotWatched, StateBaking, StateFailed:
		default:
			a.t.Errorf("%s/%s: state %q", s.Namespace, s.Name, s.State)
		}
	}
	return verdicts
}

// recordedStateOf returns what reroll records for a workload with
// annotations and pod spec, opted in under the fixture's settings, from
// the objects in the caches now.
func (f *fixture) recordedStateOf(annotations map[string]string, spec *corev1.PodSpec) string {
	f.t.Helper()
	o, _, err := plan.ParseOptIn(annotations, f.c.view.settings().OptIn)
	if err != nil {
		f.t.Fatal(err)
	}
	s, _ := plan.CalculateState(f.opts.HashKey, plan.CalculateConsumption(plan.PodReferences(spec), o),
		f.c.view.lookup(testNamespace, map[plan.ConfigRef]map[string]string{}), nil, false)
	return s.String()
}
