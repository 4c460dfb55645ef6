package controller

import (
	"bytes"

	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/reroll/reroll/pkg/metrics"
	"github.com/reroll/reroll/pkg/plan"
)

// testNamespace is where every fixture object lives.
const testNamespace = "team-a"

// fixture holds the objects of one test in the sample-controller style:
// they are seeded both into a fake clientset and, transformed as the real
// informers would, into the informers' indexers. Tests call the sync
// directly and assert the clientset's write actions and the Events.
type fixture struct {
	t testing.TB

	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	recorder *events.FakeRecorder
	c        *Controller

	opts    Options
	objects []runtime.Object
}

// newFixture returns a fixture with default options, a fake clock, and the
// given objects.
func newFixture(t testing.TB, objects ...runtime.Object) *fixture {
	return &fixture{t: t, objects: objects, opts: Options{HashKey: testHashKey(t, 7), FieldManager: "reroll", Metrics: metrics.NewRegistry(),
		Clock: testingclock.NewFakeClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))}}
}

// start builds the controller and seeds the caches. It returns a context
// that logs through the test.
func (f *fixture) start() context.Context {
	f.t.Helper()
	_, ctx := ktesting.NewTestContext(f.t)
	f.client = fake.NewClientset(f.objects...)
	f.factory = singleFactory(f.client, Options{})
	f.recorder = events.NewFakeRecorder(100)
	c, err := NewController(ctx, f.client, nil, InformerFactories{f.factory}, f.recorder, f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, o := range f.objects {
		cached, _ := TransformForCache(o.DeepCopyObject())
		if err := f.informerFor(o).GetIndexer().Add(cached); err != nil {
			f.t.Fatal(err)
		}
	}
	c.cachesSynced = nil // seeded by hand: nothing to wait for
	f.c = c
	f.t.Cleanup(c.queue.ShutDown)
	return ctx
}

// informerFor returns the informer that caches objects like obj.
func (f *fixture) informerFor(obj runtime.Object) cache.SharedIndexInformer {
	switch obj.(type) {
	case *appsv1.Deployment:
		return f.factory.Apps().V1().Deployments().Informer()
	case *appsv1.StatefulSet:
		return f.factory.Apps().V1().StatefulSets().Informer()
	case *appsv1.DaemonSet:
		return f.factory.Apps().V1().DaemonSets().Informer()
	case *batchv1.CronJob:
		return f.factory.Batch().V1().CronJobs().Informer()
	case *batchv1.Job:
		return f.factory.Batch().V1().Jobs().Informer()
	case *corev1.ConfigMap:
		return f.factory.Core().V1().ConfigMaps().Informer()
	case *corev1.Secret:
		return f.factory.Core().V1().Secrets().Informer()
	case *corev1.Namespace:
		return f.factory.Core().V1().Namespaces().Informer()
	}
	f.t.Fatalf("no informer for %T", obj)
	return nil
}

// seed puts obj into the fake API server and a transformed copy into its
// informer's cache, as an informer would after an add or update event.
func (f *fixture) seed(obj runtime.Object) {
	f.t.Helper()
	if err := f.client.Tracker().Add(obj.DeepCopyObject()); apierrors.IsAlreadyExists(err) {
		m, _ := metaOf(obj)
		err = f.client.Tracker().Update(gvrOf(obj), obj.DeepCopyObject(), m.GetNamespace())
		if err != nil {
			f.t.Fatal(err)
		}
	} else if err != nil {
		f.t.Fatal(err)
	}
	cached, _ := TransformForCache(obj.DeepCopyObject())
	if err := f.informerFor(obj).GetIndexer().Update(cached); err != nil {
		f.t.Fatal(err)
	}
}

// gvrOf returns the resource of a fixture object.
func gvrOf(obj runtime.Object) schema.GroupVersionResource {
	switch obj.(type) {
	case *appsv1.Deployment:
		return appsv1.SchemeGroupVersion.WithResource("deployments")
	case *appsv1.StatefulSet:
		return appsv1.SchemeGroupVersion.WithResource("statefulsets")
	case *appsv1.DaemonSet:
		return appsv1.SchemeGroupVersion.WithResource("daemonsets")
	case *batchv1.CronJob:
		return batchv1.SchemeGroupVersion.WithResource("cronjobs")
	case *corev1.ConfigMap:
		return corev1.SchemeGroupVersion.WithResource("configmaps")
	case *corev1.Namespace:
		return corev1.SchemeGroupVersion.WithResource("namespaces")
	}
	return corev1.SchemeGroupVersion.WithResource("secrets")
}

// unseed removes obj from the fake API server and its informer's cache.
func (f *fixture) unseed(obj runtime.Object) {
	f.t.Helper()
	m, _ := metaOf(obj)
	if err := f.client.Tracker().Delete(gvrOf(obj), m.GetNamespace(), m.GetName()); err != nil {
		f.t.Fatal(err)
	}
	if err := f.informerFor(obj).GetIndexer().Delete(obj); err != nil {
		f.t.Fatal(err)
	}
}

// sync runs the sync of a Deployment and fails the test on error.
func (f *fixture) sync(ctx context.Context, name string) {
	f.t.Helper()
	if err := f.c.syncHandler(ctx, deploymentKey(name)); err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
}

// deploymentKey is the queue key of a Deployment in the test namespace.
func deploymentKey(name string) workloadKey {
	return workloadKey{groupKind: "Deployment", name: cache.ObjectName{Namespace: testNamespace, Name: name}}
}

// patchAction is the part of a patch that tests compare.
type patchAction struct {
	resource  string
	name      string
	patchType types.PatchType
	body      string
}

// writes returns the clientset's patch actions since the last call, and
// fails the test on any other write: reroll only ever patches.
func (f *fixture) writes() []patchAction {
	f.t.Helper()
	var out []patchAction
	for _, a := range f.client.Actions() {
		switch a := a.(type) {
		case core.PatchAction:
			if a.GetNamespace() != testNamespace {
				f.t.Errorf("patch of %s in %s", a.GetResource(), a.GetNamespace())
			}
			out = append(out, patchAction{resource: a.GetResource().Resource, name: a.GetName(), patchType: a.GetPatchType(), body: string(a.GetPatch())})
		case core.ListAction, core.WatchAction, core.GetAction:
		default:
			f.t.Errorf("unexpected action %s %s", a.GetVerb(), a.GetResource())
		}
	}
	f.client.ClearActions()
	return out
}

// events returns the Events recorded since the last call.
func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// expectWrites compares the writes since the last check with want.
func (f *fixture) expectWrites(want ...patchAction) {
	f.t.Helper()
	got := f.writes()
	if !slices.Equal(got, want) {
		f.t.Errorf("writes:\n got  %+v\n want %+v", got, want)
	}
}

// scrape returns the value of one metric series in the text exposition,
// or "" when it is absent.
func (f *fixture) scrape(series string) string {
	f.t.Helper()
	var b strings.Builder
	if err := f.opts.Metrics.WriteText(&b); err != nil {
		f.t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// expectEvents compares the Events since the last check with want.
func (f *fixture) expectEvents(want ...string) {
	f.t.Helper()
	got := f.events()
	if !slices.Equal(got, want) {
		f.t.Errorf("events:\n got  %q\n want %q", got, want)
	}
}

// deployment returns an opted-in Deployment in the test namespace whose
// single container consumes what the given pod spec parts say.
func deployment(name string, annotations map[string]string, mutate func(*corev1.PodSpec)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, Annotations: annotations, ResourceVersion: "10", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
			},
		},
	}
	if mutate != nil {
		mutate(&d.Spec.Template.Spec)
	}
	return d
}

// auto is the annotation set of a workload that opts in to auto.
func auto() map[string]string { return map[string]string{plan.AnnotationAuto: "true"} }

// configMap returns a ConfigMap in the test namespace.
func configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, ResourceVersion: "1"}, Data: data}
}

// secret returns a Secret in the test namespace.
func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, ResourceVersion: "1"}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// envFromConfigMap makes the container consume every key of a ConfigMap.
func envFromConfigMap(name string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers[0].EnvFrom = append(s.Containers[0].EnvFrom, corev1.EnvFromSource{
			ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}}})
	}
}

// recordedState returns what reroll would record for d now, computed with
// the fixture's key from the objects as they are in the caches.
func (f *fixture) recordedState(d *appsv1.Deployment) string {
	f.t.Helper()
	o, _, err := plan.ParseOptIn(d.Annotations, plan.OptInSettings{AutoAll: f.opts.AutoAll, Reloader: f.opts.ReloaderAnnotations})
	if err != nil {
		f.t.Fatal(err)
	}
	consumed := plan.CalculateConsumption(plan.PodReferences(&d.Spec.Template.Spec), o)
	s, problems := plan.CalculateState(f.opts.HashKey, consumed, f.c.view.lookup(d.Namespace, map[plan.ConfigRef]map[string]string{}), nil, false)
	if len(problems) > 0 {
		f.t.Fatalf("problems: %+v", problems)
	}
	return s.String()
}

// adopted returns d as reroll leaves it after adoption: with the consumed
// annotation computed from the current caches, and a new resourceVersion.
func (f *fixture) adopted(d *appsv1.Deployment) *appsv1.Deployment {
	d = d.DeepCopy()
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[plan.AnnotationConsumed] = f.recordedState(d)
	d.ResourceVersion = "11"
	return d
}

// seedAdoptedWeb seeds Deployment "web", which consumes every key of
// ConfigMap "cfg", as reroll leaves it after adoption, and returns it.
func (f *fixture) seedAdoptedWeb() *appsv1.Deployment {
	d := f.adopted(deployment("web", auto(), envFromConfigMap("cfg")))
	f.seed(d)
	return d
}

// rollPatch is the patch that rolls a workload into state, with the
// rollout record of a roll at the fixture's clock's time.
func (f *fixture) rollPatch(name, state string) patchAction {
	f.t.Helper()
	s, err := plan.ParseConsumedState(state)
	if err != nil {
		f.t.Fatal(err)
	}
	p := f.patch(name, state, plan.CalculateConfigHash(f.opts.HashKey, s))
	return f.withRolloutRecord(p, f.expectedRecord(name, s))
}

// expectedRecord computes, from the cached workload named name and the
// cached config objects, the rollout record of its roll into s: the changes
// are the objects whose entries differ from the recorded state.
func (f *fixture) expectedRecord(name string, s plan.ConsumedState) string {
	f.t.Helper()
	var cached *cachedWorkload
	for _, inf := range []cache.SharedIndexInformer{f.factory.Apps().V1().Deployments().Informer(),
		f.factory.Apps().V1().StatefulSets().Informer(), f.factory.Apps().V1().DaemonSets().Informer(),
		f.factory.Batch().V1().CronJobs().Informer()} {
		if obj, ok, _ := inf.GetIndexer().GetByKey(testNamespace + "/" + name); ok {
			cached = obj.(*cachedWorkload)
		}
	}
	if cached == nil {
		f.t.Fatalf("%s is not cached", name)
	}
	old, _ := plan.ParseConsumedState(cached.Annotations[plan.AnnotationConsumed])
	var changes []string
	for id, fp := range s.Entries {
		if was, ok := old.Entries[id]; !ok || was == fp {
			continue
		}
		object, _, _ := strings.Cut(id, "@")
		typ, objName, _ := strings.Cut(object, "/")
		ref := plan.ConfigRef{Type: plan.ConfigType(typ), Name: objName}
		var digests map[string]string
		if obj, ok, _ := f.informerFor(map[plan.ConfigType]runtime.Object{plan.TypeConfigMap: &corev1.ConfigMap{}, plan.TypeSecret: &corev1.Secret{}}[ref.Type]).GetIndexer().GetByKey(testNamespace + "/" + objName); ok {
			digests = plan.CachedDigests(obj)
		}
		if c := string(plan.CalculateChangeID(f.opts.HashKey, ref, digests)); !slices.Contains(changes, c) {
			changes = append(changes, c)
		}
	}
	slices.Sort(changes)
	from := "incomplete"
	if cached.Status.Observed && cached.Status.Done {
		from = "complete"
	}
	return fmt.Sprintf("v1;at=%d;from=%s;changes=%s", f.opts.Clock.Now().Unix(), from, strings.Join(changes, ","))
}

// relocateTemplate moves the pod template part of an expected patch body
// from spec.template to path, where a kind keeps its template.
func (f *fixture) relocateTemplate(p patchAction, path ...string) patchAction {
	f.t.Helper()
	var body map[string]any
	if err := json.Unmarshal([]byte(p.body), &body); err != nil {
		f.t.Fatal(err)
	}
	template := body["spec"].(map[string]any)["template"]
	delete(body, "spec")
	var node any = template
	for i := len(path) - 1; i >= 0; i-- {
		node = map[string]any{path[i]: node}
	}
	body[path[0]] = node.(map[string]any)[path[0]]
	b, err := json.Marshal(body)
	if err != nil {
		f.t.Fatal(err)
	}
	p.body = string(b)
	return p
}

// withRolloutRecord adds the rollout record annotation to an expected
// patch body.
func (f *fixture) withRolloutRecord(p patchAction, record string) patchAction {
	f.t.Helper()
	var body map[string]any
	if err := json.Unmarshal([]byte(p.body), &body); err != nil {
		f.t.Fatal(err)
	}
	body["metadata"].(map[string]any)["annotations"].(map[string]any)["reroll.dev/rollout"] = record
	b, err := json.Marshal(body)
	if err != nil {
		f.t.Fatal(err)
	}
	p.body = string(b)
	return p
}

// baselinePatch is the patch that records state without rolling.
func (f *fixture) baselinePatch(name, state string) patchAction {
	return f.patch(name, state, "")
}

// patch builds the expected strategic merge patch body independently of
// annotationPatch, so that a bug there cannot hide.
func (f *fixture) patch(name, state, configHash string) patchAction {
	f.t.Helper()
	body := map[string]any{"metadata": map[string]any{
		"annotations": map[string]any{"reroll.dev/consumed": state},
	}}
	if configHash != "" {
		body["spec"] = map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]any{"reroll.dev/config-hash": configHash}}}}
	}
	b, err := json.Marshal(body)
	if err != nil {
		f.t.Fatal(err)
	}
	return patchAction{resource: "deployments", name: name, patchType: types.StrategicMergePatchType, body: string(b)}
}

// testHashKey returns a hash key made of one repeated byte.
func testHashKey(t testing.TB, b byte) plan.HashKey {
	t.Helper()
	k, err := plan.NewHashKey(bytes.Repeat([]byte{b}, plan.MinHashKeyBytes))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// singleFactory returns the one informer factory of o, which must watch
// all namespaces or one.
func singleFactory(client kubernetes.Interface, o Options) informers.SharedInformerFactory {
	return NewInformerFactories(client, o)[0]
}
