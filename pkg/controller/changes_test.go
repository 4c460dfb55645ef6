package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	core "k8s.io/client-go/testing"

	"github.com/reroll/reroll/pkg/plan"
	"github.com/reroll/reroll/pkg/plan/plantest"
)

// TestPriorityQueue steps the queue's store through pushes, touches and
// pops, with keys becoming urgent in between.
func TestPriorityQueue(t *testing.T) {
	type step struct {
		op  string // push, touch, urgent (mark), calm (unmark), pop
		key string
	}
	tests := []struct {
		name  string
		steps []step
		// pops are the keys popped, in order, by the pop steps and then by
		// draining what is left.
		pops []string
	}{
		{"FIFO without urgency",
			[]step{{"push", "a"}, {"push", "b"}, {"push", "c"}},
			[]string{"a", "b", "c"}},
		{"urgent keys go first, in their own order",
			[]step{{"push", "a"}, {"urgent", "c"}, {"urgent", "d"}, {"push", "b"}, {"push", "d"}, {"push", "c"}},
			[]string{"d", "c", "a", "b"}},
		{"a touch promotes a waiting key that became urgent",
			[]step{{"push", "a"}, {"push", "b"}, {"push", "c"}, {"urgent", "c"}, {"touch", "c"}},
			[]string{"c", "a", "b"}},
		{"a touch of a key that is not urgent changes nothing",
			[]step{{"push", "a"}, {"push", "b"}, {"touch", "b"}},
			[]string{"a", "b"}},
		{"a second touch does not promote twice",
			[]step{{"push", "a"}, {"push", "b"}, {"urgent", "b"}, {"touch", "b"}, {"touch", "b"}},
			[]string{"b", "a"}},
		{"the copy a promotion left behind is skipped, a later push is not",
			[]step{{"push", "a"}, {"push", "b"}, {"urgent", "a"}, {"touch", "a"}, {"pop", "a"}, {"calm", "a"}, {"push", "a"}},
			[]string{"a", "b", "a"}},
		{"promoted twice between pushes",
			[]step{{"push", "a"}, {"push", "b"}, {"urgent", "a"}, {"touch", "a"}, {"pop", "a"},
				{"calm", "a"}, {"push", "a"}, {"urgent", "a"}, {"touch", "a"}, {"pop", "a"}},
			[]string{"a", "a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			urgent := map[workloadKey]bool{}
			q := newPriorityQueue(func(k workloadKey) bool { return urgent[k] })
			var popped []string
			for _, s := range tt.steps {
				k := deploymentKey(s.key)
				switch s.op {
				case "push":
					q.Push(k)
				case "touch":
					q.Touch(k)
				case "urgent":
					urgent[k] = true
				case "calm":
					delete(urgent, k)
				case "pop":
					popped = append(popped, q.Pop().name.Name)
				}
			}
			for q.Len() > 0 {
				popped = append(popped, q.Pop().name.Name)
			}
			if !slices.Equal(popped, tt.pops) {
				t.Errorf("popped %q, want %q", popped, tt.pops)
			}
		})
	}
}

// TestChangeTrackerSettlesOnlyWhatASyncSaw: a change arriving while a sync
// runs stays pending, and only the first baseline of an object is kept.
func TestChangeTrackerSettlesOnlyWhatASyncSaw(t *testing.T) {
	key := deploymentKey("web")
	ref := plan.ConfigRef{Type: plan.TypeConfigMap, Name: "cfg"}
	tr := newChangeTracker()
	if tr.urgent(key) {
		t.Fatal("urgent before any change")
	}
	first, second := configMap("cfg", map[string]string{"a": "1"}), configMap("cfg", map[string]string{"a": "2"})
	tr.changed(key, ref, first)
	tr.changed(key, ref, second)
	seq, before := tr.snapshot(key)
	if before[ref] != first {
		t.Errorf("baseline is %v, want the object before the first change", before[ref])
	}
	tr.changed(key, ref, nil) // arrives while the sync runs
	tr.settle(key, seq, before, false)
	if !tr.urgent(key) {
		t.Fatal("a change that came after the snapshot was settled")
	}
	if _, before = tr.snapshot(key); len(before) != 0 {
		t.Errorf("the baseline the finished sync compared against is still kept: %v", before)
	}
	seq, before = tr.snapshot(key)
	tr.settle(key, seq, before, false)
	if tr.urgent(key) {
		t.Error("still urgent after a sync that saw every change")
	}
}

// newAdoptionRun seeds and queues the n Deployments.
func newAdoptionRun(t *testing.T, n int) (*fixture, func(i int) string) {
	name := func(i int) string { return fmt.Sprintf("app-%02d", i) }
	var objs []runtime.Object
	for i := range n {
		objs = append(objs, configMap(fmt.Sprintf("cm-%02d", i), map[string]string{"a": "0", "b": "0"}),
			deployment(name(i), auto(), func(p *corev1.PodSpec) {
				p.Containers[0].Env = []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", fmt.Sprintf("cm-%02d", i), "a", false)}
			}))
	}
	f := newFixture(t, objs...)
	f.opts.Debounce = 0 // the queue's order is under test, not the debounce
	return f, name
}

// TestChangeDuringAdoptionGoesFirst: 20 Deployments wait for adoption; a
// change to the ConfigMap of the last one queued makes its sync the next
// one, ahead of the 19 adoptions. It rolls when the change is to the key it
// consumes (the baseline is the object before the change), and is only
// adopted when the change is to a key it does not consume.
func TestChangeDuringAdoptionGoesFirst(t *testing.T) {
	for _, tt := range []struct {
		changedKey string
		wantRoll   bool
	}{{"a", true}, {"b", false}} {
		t.Run("change of key "+tt.changedKey, func(t *testing.T) {
			const n = 20
			f, name := newAdoptionRun(t, n)
			ctx := f.start()
			a, _ := f.c.view.kinds.get("Deployment")
			handler := f.c.workloadHandler(ctx, a)
			informer := f.factory.Apps().V1().Deployments().Informer()
			for i := range n {
				obj, _, _ := informer.GetIndexer().GetByKey(testNamespace + "/" + name(i))
				handler.OnAdd(obj, true)
			}
			f.c.processNextWorkItem(ctx) // app-00 is adopted
			if w := f.writes(); len(w) != 1 || w[0].name != name(0) {
				t.Fatalf("first sync wrote %v, want app-00's adoption", w)
			}

			last := fmt.Sprintf("cm-%02d", n-1)
			cmInformer := f.factory.Core().V1().ConfigMaps().Informer()
			oldObj, _, _ := cmInformer.GetIndexer().GetByKey(testNamespace + "/" + last)
			f.seed(configMap(last, map[string]string{"a": "0", "b": "0", tt.changedKey: "1"}))
			newObj, _, _ := cmInformer.GetIndexer().GetByKey(testNamespace + "/" + last)
			configHandler[*corev1.ConfigMap](ctx, f.c, plan.TypeConfigMap).OnUpdate(oldObj.(*corev1.ConfigMap), newObj.(*corev1.ConfigMap))

			f.c.processNextWorkItem(ctx)
			w := f.writes()
			if len(w) != 1 || w[0].name != name(n-1) {
				t.Fatalf("the sync after the change wrote %v, want %s's", w, name(n-1))
			}
			if rolled := strings.Contains(w[0].body, plan.AnnotationConfigHash); rolled != tt.wantRoll {
				t.Errorf("%s rolled = %v, want %v; patch %s", name(n-1), rolled, tt.wantRoll, w[0].body)
			}
			d, _ := f.client.Tracker().Get(gvrOf(&appsv1.Deployment{}), testNamespace, name(n-1))
			if !strings.Contains(w[0].body, f.recordedState(d.(*appsv1.Deployment))) {
				t.Errorf("%s recorded %s, want the state of the content now", name(n-1), w[0].body)
			}
			if f.c.memory.changes.urgent(deploymentKey(name(n - 1))) {
				t.Error("the change is still pending after the sync")
			}
			for f.c.queue.Len() > 0 {
				f.c.processNextWorkItem(ctx)
			}
			var rest []string
			for _, p := range f.writes() {
				if strings.Contains(p.body, plan.AnnotationConfigHash) {
					t.Errorf("%s rolled on adoption", p.name)
				}
				rest = append(rest, p.name)
			}
			if len(rest) != n-2 {
				t.Errorf("%d adoptions after the change, want %d: %q", len(rest), n-2, rest)
			}
		})
	}
}

// TestChangeRacingAdoptionStillRolls: the adoption sync reads the caches
// after a consumed change reached them but before the change's event is
// handled, so it records the new content as the baseline. The change's own
// sync, which finds the workload adopted, still rolls it once: the Pods
// started before the change.
func TestChangeRacingAdoptionStillRolls(t *testing.T) {
	f, name := newAdoptionRun(t, 1)
	ctx := f.start()
	cmInformer := f.factory.Core().V1().ConfigMaps().Informer()
	oldObj, _, _ := cmInformer.GetIndexer().GetByKey(testNamespace + "/cm-00")
	f.seed(configMap("cm-00", map[string]string{"a": "1", "b": "0"})) // the store has it; the handler has not run
	f.sync(ctx, name(0))
	w := f.writes()
	if len(w) != 1 || strings.Contains(w[0].body, plan.AnnotationConfigHash) {
		t.Fatalf("the adoption wrote %v, want one patch that does not roll", w)
	}
	cachedWeb, _, _ := f.factory.Apps().V1().Deployments().Informer().GetIndexer().GetByKey(testNamespace + "/" + name(0))
	newObj, _, _ := cmInformer.GetIndexer().GetByKey(testNamespace + "/cm-00")
	// The workload in the cache is the one before the adoption's write.
	if _, adopted := cachedWeb.(*cachedWorkload).Annotations[plan.AnnotationConsumed]; adopted {
		t.Fatal("the cache already shows the adoption")
	}
	configHandler[*corev1.ConfigMap](ctx, f.c, plan.TypeConfigMap).OnUpdate(oldObj.(*corev1.ConfigMap), newObj.(*corev1.ConfigMap))

	// The adoption's write reaches the cache; then the change's sync runs.
	d, _ := f.client.Tracker().Get(gvrOf(&appsv1.Deployment{}), testNamespace, name(0))
	adopted := d.(*appsv1.Deployment).DeepCopy()
	adopted.ResourceVersion = "30"
	f.seed(adopted)
	f.sync(ctx, name(0))
	w = f.writes()
	if len(w) != 1 || !strings.Contains(w[0].body, plan.AnnotationConfigHash) {
		t.Fatalf("the change's sync wrote %v, want one roll", w)
	}
	f.seed(func() *appsv1.Deployment {
		d, _ := f.client.Tracker().Get(gvrOf(&appsv1.Deployment{}), testNamespace, name(0))
		rolled := d.(*appsv1.Deployment).DeepCopy()
		rolled.ResourceVersion = "31"
		return rolled
	}())
	f.sync(ctx, name(0))
	if w := f.writes(); len(w) != 0 {
		t.Errorf("a sync after the roll wrote %v, want nothing", w)
	}
}

// TestChangeDuringBaselineRollRollsOnce: a workload not adopted yet rolls
// against the baseline of a consumed change; while that roll's PATCH is in
// flight, a second change arrives, to a key it does not consume, and still
// sees the workload unadopted in the cache. The sync after the roll writes
// nothing: the baseline of the first change is spent, not compared again.
func TestChangeDuringBaselineRollRollsOnce(t *testing.T) {
	f, name := newAdoptionRun(t, 1)
	ctx := f.start()
	handler := configHandler[*corev1.ConfigMap](ctx, f.c, plan.TypeConfigMap)
	indexer := f.factory.Core().V1().ConfigMaps().Informer().GetIndexer()
	change := func(data map[string]string) {
		oldObj, _, _ := indexer.GetByKey(testNamespace + "/cm-00")
		f.seed(configMap("cm-00", data))
		newObj, _, _ := indexer.GetByKey(testNamespace + "/cm-00")
		handler.OnUpdate(oldObj.(*corev1.ConfigMap), newObj.(*corev1.ConfigMap))
	}
	change(map[string]string{"a": "1", "b": "0"})
	inFlight := true
	f.client.PrependReactor("patch", "deployments", func(core.Action) (bool, runtime.Object, error) {
		if inFlight {
			inFlight = false
			change(map[string]string{"a": "1", "b": "1"})
		}
		return false, nil, nil
	})
	f.sync(ctx, name(0))
	if w := f.writes(); len(w) != 1 || !strings.Contains(w[0].body, plan.AnnotationConfigHash) {
		t.Fatalf("the first sync wrote %v, want one roll", w)
	}
	d, _ := f.client.Tracker().Get(gvrOf(&appsv1.Deployment{}), testNamespace, name(0))
	rolled := d.(*appsv1.Deployment).DeepCopy()
	rolled.ResourceVersion = "30"
	f.seed(rolled)
	f.sync(ctx, name(0))
	if w := f.writes(); len(w) != 0 {
		t.Errorf("the sync after the roll wrote %v, want nothing: key b is not consumed", w)
	}
	if f.c.memory.changes.urgent(deploymentKey(name(0))) {
		t.Error("the change is still pending after a sync that saw it")
	}
}

// TestChangeTrackerSnapshotIsTheSyncsOwn: a change that arrives while a
// sync reads its snapshot's baselines does not touch them (the handlers and
// the workers run concurrently).
func TestChangeTrackerSnapshotIsTheSyncsOwn(t *testing.T) {
	key := deploymentKey("web")
	tr := newChangeTracker()
	tr.changed(key, plan.ConfigRef{Type: plan.TypeConfigMap, Name: "cfg"}, configMap("cfg", nil))
	_, before := tr.snapshot(key)
	tr.changed(key, plan.ConfigRef{Type: plan.TypeSecret, Name: "s"}, secret("s", nil))
	if len(before) != 1 {
		t.Errorf("the snapshot holds %d baselines after a later change, want the 1 it was taken with", len(before))
	}
}
