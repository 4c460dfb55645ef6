package controller

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
	"github.com/reroll/reroll/pkg/plan/plantest"
)

// The records survive their encoding exactly, and what cannot be decoded is
// an error, never a record that would roll the wrong workloads.
func TestPendingRecordsEncoding(t *testing.T) {
	cm, _ := TransformForCache(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "a", ResourceVersion: "7",
		Annotations: map[string]string{plan.AnnotationWaves: "1,100%"}}, Data: map[string]string{"k": "v"}})
	sec, _ := TransformForCache(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: "b", ResourceVersion: "9"},
		Data: map[string][]byte{"p": []byte("secret")}})
	records := []*pendingRecord{
		{namespace: "a", ref: plan.ConfigRef{Type: plan.TypeConfigMap, Name: "cfg"}, before: cm.(*corev1.ConfigMap),
			workloads: []workloadKey{{groupKind: "Deployment", name: cache.ObjectName{Namespace: "a", Name: "web"}},
				{groupKind: "Rollout.argoproj.io", name: cache.ObjectName{Namespace: "a", Name: "canary"}}}},
		{namespace: "b", ref: plan.ConfigRef{Type: plan.TypeSecret, Name: "pw"}, before: sec.(*corev1.Secret),
			workloads: []workloadKey{{groupKind: "StatefulSet", name: cache.ObjectName{Namespace: "b", Name: "db"}}}},
	}
	data, err := encodePendingRecords(records)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "secret") {
		t.Error("a Secret's value is in the encoding")
	}
	got, err := decodePendingRecords(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, records) {
		t.Errorf("decoded %+v, want %+v", got, records)
	}
	if got, err := decodePendingRecords(nil); err != nil || len(got) != 0 {
		t.Errorf("empty data: %v, %v", got, err)
	}

	bad := map[string]string{
		"not gzip":       "{}",
		"unknown type":   `[{"namespace":"a","type":"Pod","name":"x","before":{},"workloads":[]}]`,
		"bad workload":   `[{"namespace":"a","type":"ConfigMap","name":"x","before":{},"workloads":["Deployment/web"]}]`,
		"bad object":     `[{"namespace":"a","type":"ConfigMap","name":"x","before":[1],"workloads":[]}]`,
		"not a list":     `{"records":1}`,
		"truncated JSON": `[{"namespace":`,
	}
	for name, content := range bad {
		data := []byte(content)
		if name != "not gzip" {
			data = gzipped(t, content)
		}
		if got, err := decodePendingRecords(data); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, got)
		}
	}
}

// gzipped returns s gzipped, as the store writes its JSON.
func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// newSharedConfigRun returns a fixture of n unadopted Deployments that all
// consume key a of the ConfigMap shared, with the pending store on.
func newSharedConfigRun(t *testing.T, n int, objects ...runtime.Object) (*fixture, func(i int) string) {
	name := func(i int) string { return fmt.Sprintf("app-%02d", i) }
	objs := append([]runtime.Object{configMap("shared", map[string]string{"a": "0", "b": "0"})}, objects...)
	for i := range n {
		objs = append(objs, deployment(name(i), auto(), func(p *corev1.PodSpec) {
			p.Containers[0].Env = []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "shared", "a", false)}
		}))
	}
	f := newFixture(t, objs...)
	f.opts.Debounce = 0
	f.opts.ControllerNamespace, f.opts.PendingChangesSecret = "reroll-system", "reroll-pending-changes"
	return f, name
}

// changeShared changes key a of the ConfigMap shared, in the API server
// and the cache, and hands the update to the controller's handler. It
// returns the ConfigMap as changed.
func (f *fixture) changeShared(ctx context.Context) *corev1.ConfigMap {
	f.t.Helper()
	indexer := f.factory.Core().V1().ConfigMaps().Informer().GetIndexer()
	oldObj, _, _ := indexer.GetByKey(testNamespace + "/shared")
	changed := configMap("shared", map[string]string{"a": "1", "b": "0"})
	changed.ResourceVersion = "2"
	f.seed(changed)
	newObj, _, _ := indexer.GetByKey(testNamespace + "/shared")
	configHandler[*corev1.ConfigMap](ctx, f.c, plan.TypeConfigMap).OnUpdate(oldObj.(*corev1.ConfigMap), newObj.(*corev1.ConfigMap))
	return changed
}

// current returns the Deployment as the fake API server holds it.
func (f *fixture) current(name string) *appsv1.Deployment {
	f.t.Helper()
	obj, err := f.client.Tracker().Get(gvrOf(&appsv1.Deployment{}), testNamespace, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return obj.(*appsv1.Deployment).DeepCopy()
}

// pendingSecret returns the pending-changes Secret and its records.
func (f *fixture) pendingSecret() []*pendingRecord {
	f.t.Helper()
	obj, err := f.client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), "reroll-system", "reroll-pending-changes")
	if err != nil {
		f.t.Fatal(err)
	}
	records, err := decodePendingRecords(obj.(*corev1.Secret).Data[pendingStoreDataKey])
	if err != nil {
		f.t.Fatal(err)
	}
	return records
}

// isRoll reports whether a patch rolls (it changes the pod template).
func isRoll(p patchAction) bool { return strings.Contains(p.body, plan.AnnotationConfigHash) }

// TestPendingChangeSurvivesACrash is issue #21's scenario in small: 2 of 5
// consumers are adopted when their ConfigMap changes; the change is written
// down once, for the 3 others; one of them rolls, and reroll "crashes". A
// new controller over what the API server holds then rolls each of the 4
// that did not roll yet exactly once (the 2 adopted ones against their
// recorded state, the 2 others against the written-down baseline, one of
// them adopted with the new content by a sync that raced the change), and
// drops the settled change with one more write.
func TestPendingChangeSurvivesACrash(t *testing.T) {
	const n = 5
	f, name := newSharedConfigRun(t, n)
	ctx := f.start()
	f.sync(ctx, name(0))
	f.sync(ctx, name(1))
	for i := range 2 {
		if w := f.writes(); i == 0 && (len(w) != 2 || isRoll(w[0]) || isRoll(w[1])) {
			t.Fatalf("adoptions wrote %v", w)
		}
		f.seed(f.current(name(i)))
	}
	changed := f.changeShared(ctx)

	if err := f.c.pending.writeOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.scrape("reroll_pending_change_writes_total"); got != "2" { // an update that finds no Secret, then its create
		t.Errorf("writes: %q, want the Secret created with one change", got)
	}
	records := f.pendingSecret()
	if len(records) != 1 || len(records[0].workloads) != 3 || records[0].before.GetResourceVersion() != "1" {
		t.Fatalf("records %+v, want one change with the 3 unadopted consumers and the object before it", records)
	}
	f.client.ClearActions()
	f.sync(ctx, name(2))
	if w := f.writes(); len(w) != 1 || !isRoll(w[0]) {
		t.Fatalf("the unadopted app-02 wrote %v, want a roll", w)
	}

	// The crash: a new controller over what the API server holds now.
	after := []runtime.Object{changed}
	for i := range n {
		d := f.current(name(i))
		if i == 4 {
			// app-04's adoption read the new content before the change's
			// event was handled, and the roll that was to follow was lost
			// with the crash.
			d.Annotations[plan.AnnotationConsumed] = f.recordedState(d)
		}
		after = append(after, d)
	}
	secret, _ := f.client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("secrets"), "reroll-system", "reroll-pending-changes")
	after = append(after, secret)
	g := newFixture(t, after...)
	g.opts = f.opts
	g.opts.Metrics = nil
	ctx = g.start()
	if err := g.c.resumePendingChanges(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.c.pending.writeOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if records := g.pendingSecret(); len(records) != 1 || len(records[0].workloads) != 2 {
		t.Errorf("after the restart the store holds %+v, want the change for app-03 and app-04 (app-02 rolled)", records)
	}
	g.client.ClearActions()
	rolled := map[string]int{}
	for i := range n {
		g.sync(ctx, name(i))
		for _, w := range g.writes() {
			if isRoll(w) {
				rolled[w.name]++
			}
		}
	}
	want := map[string]int{name(0): 1, name(1): 1, name(3): 1, name(4): 1}
	if !reflect.DeepEqual(rolled, want) {
		t.Errorf("rolled after the restart %v, want %v (app-02 rolled before the crash)", rolled, want)
	}
	if err := g.c.pending.writeOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if records := g.pendingSecret(); len(records) != 0 {
		t.Errorf("the settled change is still stored: %+v", records)
	}
	for _, a := range g.client.Actions() {
		if u, ok := a.(core.UpdateAction); ok && u.GetResource().Resource == "secrets" {
			return
		}
	}
	t.Error("the settled change was not written away")
}

// TestTakeoverDoesNotRollAgain: a standby's handlers keep baselines for the
// consumers not adopted when a change arrives, while the leader rolls them.
// After a takeover, one the old leader rolled is not rolled again; one it
// did not reach rolls once.
func TestTakeoverDoesNotRollAgain(t *testing.T) {
	f, name := newSharedConfigRun(t, 2)
	f.opts.PendingChangesSecret = "" // the standby's baselines are in memory
	ctx := f.start()
	f.changeShared(ctx)

	// The old leader's roll of app-00 reaches the standby's cache.
	rolled := f.current(name(0))
	rolled.Annotations[plan.AnnotationConsumed] = f.recordedState(rolled)
	rolled.Annotations[plan.AnnotationRollout] = "v1;at=1"
	rolled.Spec.Template.Annotations = map[string]string{plan.AnnotationConfigHash: "rolled"}
	rolled.ResourceVersion = "11"
	f.seed(rolled)

	if err := f.c.resumePendingChanges(ctx); err != nil { // the takeover
		t.Fatal(err)
	}
	f.client.ClearActions()
	f.sync(ctx, name(0))
	if w := f.writes(); len(w) != 0 {
		t.Errorf("app-00, rolled by the old leader, wrote %v after the takeover", w)
	}
	f.sync(ctx, name(1))
	if w := f.writes(); len(w) != 1 || !isRoll(w[0]) {
		t.Errorf("app-01, not reached by the old leader, wrote %v, want one roll", w)
	}
}
