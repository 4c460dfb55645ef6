package controller

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/reroll/reroll/pkg/plan"
	"github.com/reroll/reroll/pkg/plan/plantest"
)

// drainQueue returns the keys queued now, sorted, and marks them done.
func drainQueue(c *Controller) []string {
	var keys []string
	for c.queue.Len() > 0 {
		k, _ := c.queue.Get()
		keys = append(keys, k.String())
		c.queue.Done(k)
	}
	slices.Sort(keys)
	return keys
}

// handlerFixture starts a fixture with three Deployments: "env" consumes
// key "a" of ConfigMap "cfg"; "all" consumes all of "cfg" and Secret "s";
// "plain" consumes "cfg" but is not opted in.
func handlerFixture(t *testing.T) (*fixture, context.Context) {
	f := newFixture(t,
		deployment("env", auto(), func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{plantest.ConfigMapKeyEnv("A", "cfg", "a", false)}
		}),
		deployment("all", auto(), func(s *corev1.PodSpec) {
			envFromConfigMap("cfg")(s)
			s.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}}}
		}),
		deployment("plain", nil, envFromConfigMap("cfg")),
		configMap("cfg", map[string]string{"a": "1"}),
		secret("s", map[string]string{"p": "1"}),
	)
	ctx := f.start()
	return f, ctx
}

func TestConfigHandlerEnqueuesConsumers(t *testing.T) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	cached := func(o any) *corev1.ConfigMap { c, _ := TransformForCache(o); return c.(*corev1.ConfigMap) }
	relabeled := cm.DeepCopy()
	relabeled.Labels = map[string]string{"x": "y"}
	relabeled.ResourceVersion = "2"
	changed := cm.DeepCopy()
	changed.Data["a"] = "2"
	changed.ResourceVersion = "2"
	ignored := cm.DeepCopy()
	ignored.Annotations = map[string]string{plan.AnnotationIgnore: "true"}
	consumers := []string{"Deployment team-a/all", "Deployment team-a/env"}
	tests := []struct {
		name  string
		event func(h cache.TypedResourceEventHandler[*corev1.ConfigMap])
		want  []string
	}{
		{"add in the initial list", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) { h.OnAdd(cached(cm.DeepCopy()), true) }, nil},
		{"add after sync", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) { h.OnAdd(cached(cm.DeepCopy()), false) }, consumers},
		{"content update", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) {
			h.OnUpdate(cached(cm.DeepCopy()), cached(changed.DeepCopy()))
		}, consumers},
		{"label-only update", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) {
			h.OnUpdate(cached(cm.DeepCopy()), cached(relabeled.DeepCopy()))
		}, nil},
		{"resync", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) {
			o := cached(cm.DeepCopy())
			h.OnUpdate(o, o)
		}, nil},
		{"ignore annotation toggled", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) {
			h.OnUpdate(cached(cm.DeepCopy()), cached(ignored.DeepCopy()))
		}, consumers},
		{"pause removed", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) {
			paused := cm.DeepCopy()
			paused.Annotations = map[string]string{plan.AnnotationPaused: "true"}
			h.OnUpdate(cached(paused), cached(cm.DeepCopy()))
		}, consumers},
		{"content update of an ignored object", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) {
			changedIgnored := changed.DeepCopy()
			changedIgnored.Annotations = map[string]string{plan.AnnotationIgnore: "true"}
			h.OnUpdate(cached(ignored.DeepCopy()), cached(changedIgnored))
		}, nil},
		{"delete", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) {
			h.OnDelete(cache.DeletedObject[*corev1.ConfigMap]{OptionalObj: cached(cm.DeepCopy())})
		}, consumers},
		{"delete tombstone without object", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) {
			h.OnDelete(cache.DeletedObject[*corev1.ConfigMap]{FinalStateUnknown: &cache.DeletedFinalStateUnknown{Key: "team-a/cfg"}})
		}, consumers},
		{"unconsumed object", func(h cache.TypedResourceEventHandler[*corev1.ConfigMap]) {
			h.OnAdd(cached(configMap("other", map[string]string{"a": "1"})), false)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ctx := handlerFixture(t)
			tt.event(configHandler[*corev1.ConfigMap](ctx, f.c, plan.TypeConfigMap))
			if got := drainQueue(f.c); !slices.Equal(got, tt.want) {
				t.Errorf("enqueued %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSecretHandlerEnqueuesConsumers(t *testing.T) {
	f, ctx := handlerFixture(t)
	h := configHandler[*corev1.Secret](ctx, f.c, plan.TypeSecret)
	old, _ := TransformForCache(secret("s", map[string]string{"p": "1"}))
	updated, _ := TransformForCache(secret("s", map[string]string{"p": "2"}))
	h.OnUpdate(old.(*corev1.Secret), updated.(*corev1.Secret))
	if got, want := drainQueue(f.c), []string{"Deployment team-a/all"}; !slices.Equal(got, want) {
		t.Errorf("enqueued %q, want %q", got, want)
	}
}

func TestWorkloadHandlerEnqueues(t *testing.T) {
	d := deployment("env", auto(), nil)
	base := cachedCopy(d)
	statusOnly := d.DeepCopy()
	statusOnly.ResourceVersion = "11"
	statusOnly.Status.ReadyReplicas = 1
	specChange := d.DeepCopy()
	specChange.ResourceVersion = "11"
	specChange.Generation = 2
	annotated := d.DeepCopy()
	annotated.ResourceVersion = "11"
	annotated.Annotations = map[string]string{plan.AnnotationAuto: "true", plan.AnnotationSecrets: "s"}
	otherAnnotation := d.DeepCopy()
	otherAnnotation.ResourceVersion = "11"
	otherAnnotation.Annotations = map[string]string{plan.AnnotationAuto: "true", "deployment.kubernetes.io/revision": "2"}
	malformed := cachedCopy(deployment("bad", map[string]string{plan.AnnotationAuto: "maybe"}, nil))
	tests := []struct {
		name  string
		event func(h cache.ResourceEventHandler)
		want  []string
	}{
		{"add opted in", func(h cache.ResourceEventHandler) { h.OnAdd(base, false) }, []string{"Deployment team-a/env"}},
		{"add not opted in", func(h cache.ResourceEventHandler) { h.OnAdd(cachedCopy(deployment("plain", nil, nil)), false) }, nil},
		{"add with malformed annotation, to warn", func(h cache.ResourceEventHandler) { h.OnAdd(malformed, false) }, []string{"Deployment team-a/bad"}},
		{"status-only update", func(h cache.ResourceEventHandler) { h.OnUpdate(base, cachedCopy(statusOnly)) }, nil},
		{"spec update", func(h cache.ResourceEventHandler) { h.OnUpdate(base, cachedCopy(specChange)) }, []string{"Deployment team-a/env"}},
		{"annotation update", func(h cache.ResourceEventHandler) { h.OnUpdate(base, cachedCopy(annotated)) }, []string{"Deployment team-a/env"}},
		{"other annotation update", func(h cache.ResourceEventHandler) { h.OnUpdate(base, cachedCopy(otherAnnotation)) }, nil},
		{"resync", func(h cache.ResourceEventHandler) { h.OnUpdate(base, base) }, []string{"Deployment team-a/env"}},
		{"delete", func(h cache.ResourceEventHandler) { h.OnDelete(base) }, []string{"Deployment team-a/env"}},
		{"delete tombstone", func(h cache.ResourceEventHandler) {
			h.OnDelete(cache.DeletedFinalStateUnknown{Key: "team-a/env", Obj: base})
		}, []string{"Deployment team-a/env"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ctx := handlerFixture(t)
			k, _ := f.c.view.kinds.get("Deployment")
			tt.event(f.c.workloadHandler(ctx, k))
			if got := drainQueue(f.c); !slices.Equal(got, tt.want) {
				t.Errorf("enqueued %q, want %q", got, tt.want)
			}
		})
	}
}

// Invariant 2: a burst of changes to several objects a workload consumes,
// within the debounce window, syncs it once, and so rolls it once.
func TestDebounceCoalescesBurst(t *testing.T) {
	clock := testingclock.NewFakeClock(time.Now())
	cm := configMap("cfg", map[string]string{"a": "1"})
	s := secret("s", map[string]string{"p": "1"})
	f := newFixture(t, cm, s)
	f.opts.Debounce = time.Second
	f.opts.Clock = clock
	ctx := f.start()
	d := f.adopted(deployment("all", auto(), func(p *corev1.PodSpec) {
		envFromConfigMap("cfg")(p)
		p.Containers[0].Env = []corev1.EnvVar{plantest.SecretKeyEnv("P", "s", "p", false)}
	}))
	f.seed(d)
	cmHandler := configHandler[*corev1.ConfigMap](ctx, f.c, plan.TypeConfigMap)
	secretHandler := configHandler[*corev1.Secret](ctx, f.c, plan.TypeSecret)

	// Three changes, spread over 900ms, to two objects.
	cm2 := configMap("cfg", map[string]string{"a": "2"})
	f.seed(cm2)
	cmHandler.OnUpdate(cachedCopy(cm).(*corev1.ConfigMap), cachedCopy(cm2).(*corev1.ConfigMap))
	clock.Step(400 * time.Millisecond)
	s2 := secret("s", map[string]string{"p": "2"})
	f.seed(s2)
	secretHandler.OnUpdate(cachedCopy(s).(*corev1.Secret), cachedCopy(s2).(*corev1.Secret))
	// A workload update in the middle of the burst (reroll's own earlier
	// write arriving late, say) must not cut it in two.
	k, _ := f.c.view.kinds.get("Deployment")
	touched := d.DeepCopy()
	touched.Annotations["note"] = "x"
	touched.ResourceVersion = "12"
	f.c.workloadHandler(ctx, k).OnUpdate(d, touched)
	clock.Step(500 * time.Millisecond)
	cm3 := configMap("cfg", map[string]string{"a": "3"})
	f.seed(cm3)
	cmHandler.OnUpdate(cachedCopy(cm2).(*corev1.ConfigMap), cachedCopy(cm3).(*corev1.ConfigMap))
	if n := f.c.queue.Len(); n != 0 {
		t.Fatalf("queue has %d keys before the debounce window ended", n)
	}
	clock.Step(100 * time.Millisecond)
	// The delaying queue moves due keys in its own goroutine: wait for it.
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return f.c.queue.Len() == 1, nil
	}); err != nil {
		t.Fatalf("the debounced key never became ready: %v", err)
	}
	if !f.c.processNextWorkItem(ctx) {
		t.Fatal("queue shut down")
	}
	f.expectWrites(f.rollPatch("all", f.recordedState(d)))
	f.expectEvents("Normal Rolled Rolled: consumed content changed in ConfigMap/cfg, Secret/s")
	if n := f.c.queue.Len(); n != 0 {
		t.Errorf("%d keys left after the burst was synced", n)
	}
}

// cachedCopy returns obj as the cache holds it.
func cachedCopy(obj runtime.Object) any {
	out, _ := TransformForCache(obj.DeepCopyObject())
	return out
}

// The index maps config objects to the opted-in workloads that consume them.
func TestConsumersIndex(t *testing.T) {
	f, _ := handlerFixture(t)
	idx := f.factory.Apps().V1().Deployments().Informer().GetIndexer()
	names := func(value string) []string {
		objs, err := idx.ByIndex(consumersIndex, value)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs {
			out = append(out, o.(*cachedWorkload).Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names("ConfigMap/team-a/cfg"); !slices.Equal(got, []string{"all", "env"}) {
		t.Errorf("consumers of cfg = %q", got)
	}
	if got := names("Secret/team-a/s"); !slices.Equal(got, []string{"all"}) {
		t.Errorf("consumers of s = %q", got)
	}
	if got := names("ConfigMap/other-ns/cfg"); len(got) != 0 {
		t.Errorf("consumers in another namespace = %q", got)
	}
}

// Run waits for caches, runs workers until the context ends, then drains.
func TestRunProcessesQueueAndStops(t *testing.T) {
	d := deployment("web", auto(), envFromConfigMap("cfg"))
	f := newFixture(t, d, configMap("cfg", map[string]string{"a": "1"}))
	ctx := f.start()
	ctx, cancel := context.WithCancel(ctx)
	synced := make(chan struct{})
	var once sync.Once
	f.c.syncHandler = func(ctx context.Context, key workloadKey) error {
		err := f.c.syncWorkload(ctx, key)
		once.Do(func() { close(synced) })
		return err
	}
	f.c.queue.Add(deploymentKey("web"))
	done := make(chan error)
	go func() { done <- f.c.Run(ctx, 2) }()
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker never synced the key")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	f.expectWrites(f.baselinePatch("web", f.recordedState(d)))
}

// Readiness follows the caches; health fails when a sync runs for twice its
// deadline or an informer stopped.
func TestHasSyncedAndHealthy(t *testing.T) {
	f := newFixture(t)
	f.start()
	synced := false
	f.c.cachesSynced = []cache.InformerSynced{func() bool { return true }, func() bool { return synced }}
	if f.c.HasSynced() {
		t.Error("ready before every cache synced")
	}
	synced = true
	if !f.c.HasSynced() {
		t.Error("not ready after every cache synced")
	}
	f.c.informers = nil // the fixture's informers never ran, so they count as stopped
	if err := f.c.Healthy(); err != nil {
		t.Errorf("healthy controller: %v", err)
	}
	f.c.memory.syncStarts.set(deploymentKey("slow"), time.Now().Add(-3*syncTimeout))
	if err := f.c.Healthy(); err == nil || !strings.Contains(err.Error(), "sync of Deployment team-a/slow has run for") {
		t.Errorf("stuck sync: %v", err)
	}
	f.c.memory.syncStarts.delete(deploymentKey("slow"))
	inf := f.factory.Core().V1().ConfigMaps().Informer()
	stopped, stop := context.WithCancel(context.Background())
	stop()
	inf.RunWithContext(stopped) // returns at once: the context is done
	f.c.informers = []informerGroup{{inf}}
	if err := f.c.Healthy(); err == nil || !strings.Contains(err.Error(), "informer has stopped") {
		t.Errorf("stopped informer: %v", err)
	}
}
