package controller

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/restmapper"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

func TestParseExtraKinds(t *testing.T) {
	rollouts := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	tests := []struct {
		value     string
		want      []ExtraKind
		wantError string
	}{
		{value: "", want: nil},
		{value: "rollouts.v1alpha1.argoproj.io", want: []ExtraKind{{Arg: "rollouts.v1alpha1.argoproj.io", GVR: &rollouts,
			GR: schema.GroupResource{Group: "v1alpha1.argoproj.io", Resource: "rollouts"}, TemplatePath: []string{"spec", "template"}}}},
		{value: "widgets.example.com:spec.workload.template", want: []ExtraKind{{Arg: "widgets.example.com:spec.workload.template",
			GVR: &schema.GroupVersionResource{Group: "com", Version: "example", Resource: "widgets"},
			GR:  schema.GroupResource{Group: "example.com", Resource: "widgets"}, TemplatePath: []string{"spec", "workload", "template"}}}},
		{value: "widgets.io", want: []ExtraKind{{Arg: "widgets.io", GR: schema.GroupResource{Group: "io", Resource: "widgets"}, TemplatePath: []string{"spec", "template"}}}},
		{value: "widgets", wantError: `"widgets" has no group`},
		{value: "a.b,,c.d", wantError: `item "" is empty`},
		{value: "a.b, c.d", wantError: `item " c.d" is empty or has spaces`},
		{value: "Widgets.io", wantError: "is not resource.version.group or resource.group"},
		{value: "a..b", wantError: "is not resource.version.group or resource.group"},
		{value: "a.b:spec..template", wantError: "invalid template path"},
		{value: "a.b:", wantError: "invalid template path"},
		{value: "a.b,a.b:spec.t", wantError: `"a.b" is listed twice`},
	}
	for _, tt := range tests {
		got, err := ParseExtraKinds(tt.value)
		if tt.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Errorf("ParseExtraKinds(%q) error = %v, want %q", tt.value, err, tt.wantError)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseExtraKinds(%q) = %+v, %v; want %+v", tt.value, got, err, tt.want)
		}
	}
}

func TestExtraKindGroupResource(t *testing.T) {
	for arg, want := range map[string]string{
		"rollouts.v1alpha1.argoproj.io": "rollouts.argoproj.io",
		"clonesets.apps.kruise.io":      "clonesets.apps.kruise.io",
		"widgets.v2.example.com":        "widgets.example.com",
		"widgets.io":                    "widgets.io",
	} {
		k, err := ParseExtraKinds(arg)
		if err != nil {
			t.Fatal(err)
		}
		if got := k[0].GroupResource().String(); got != want {
			t.Errorf("%s: %s, want %s", arg, got, want)
		}
	}
}

// FuzzParseExtraKinds checks that parsing never panics and that what it
// accepts has a resource, a group and a non-empty template path.
func FuzzParseExtraKinds(f *testing.F) {
	for _, s := range []string{"rollouts.v1alpha1.argoproj.io", "clonesets.apps.kruise.io:spec.template", "a.b,c.d:x", ":", "a.b:..", "x.y:spec.template,x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		kinds, err := ParseExtraKinds(value)
		if err != nil {
			return
		}
		for _, k := range kinds {
			if k.GR.Resource == "" || k.GR.Group == "" || len(k.TemplatePath) == 0 {
				t.Fatalf("%q gave %+v", value, k)
			}
			for _, s := range k.TemplatePath {
				if s == "" {
					t.Fatalf("%q gave an empty path segment", value)
				}
			}
		}
	})
}

// rollout returns an unstructured custom workload with a pod template at
// spec.template consuming ConfigMap cfg.
func rollout(name string, annotations map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1",
		"kind":       "Rollout",
		"metadata":   map[string]any{"name": name, "namespace": testNamespace, "resourceVersion": "10"},
		"spec": map[string]any{
			"replicas": int64(3),
			"strategy": map[string]any{"canary": map[string]any{"steps": []any{map[string]any{"setWeight": int64(20)}}}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "app", "image": "app:1",
					"envFrom": []any{map[string]any{"configMapRef": map[string]any{"name": "cfg"}}},
				}}},
			},
		},
	}}
	u.SetAnnotations(annotations)
	return u
}

func TestTemplateTransform(t *testing.T) {
	transform := templateTransform(ExtraKind{TemplatePath: []string{"spec", "template"}})
	u := rollout("r", map[string]string{plan.AnnotationAuto: "true", lastAppliedAnnotation: "{}"})
	out, err := transform(u)
	if err != nil {
		t.Fatal(err)
	}
	obj := out.(*cachedWorkload)
	// Only the references survive of the template, and only reroll's
	// annotations of the metadata.
	want := &cachedWorkload{
		TypeMeta:   metav1.TypeMeta{APIVersion: "example.com/v1", Kind: "Rollout"},
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: testNamespace, ResourceVersion: "10", Annotations: map[string]string{plan.AnnotationAuto: "true"}},
		References: []plan.PodReference{{Ref: plan.ConfigRef{Type: plan.TypeConfigMap, Name: "cfg"}, Site: plan.ReferenceSite{Field: plan.SiteEnvFrom, Owner: "app"}}},
		// No status.observedGeneration: complete at once.
		Status: plan.RolloutStatus{Observed: true, Done: true},
	}
	if !reflect.DeepEqual(obj, want) {
		t.Errorf("got  %+v\nwant %+v", obj, want)
	}
	if again, _ := transform(obj); again != obj {
		t.Error("not idempotent")
	}
	if cp := obj.DeepCopyObject().(*cachedWorkload); !reflect.DeepEqual(cp, obj) || (len(cp.References) > 0 && &cp.References[0] == &obj.References[0]) {
		t.Error("DeepCopyObject is not a deep copy")
	}

	bad := rollout("bad", nil)
	_ = unstructured.SetNestedField(bad.Object, "not-a-template", "spec", "template")
	if got, _ := transform(bad); !strings.Contains(got.(*cachedWorkload).TemplateError, "spec.template is not an object") {
		t.Errorf("non-object template: %q", got.(*cachedWorkload).TemplateError)
	}
	none, _ := templateTransform(ExtraKind{TemplatePath: []string{"spec", "workload", "template"}})(rollout("none", nil))
	if e := none.(*cachedWorkload).TemplateError; e != "no pod template at spec.workload.template" {
		t.Errorf("missing template: %q", e)
	}
}

// coreResources is what a fake discovery always serves.
func coreResources() []*metav1.APIResourceList {
	return []*metav1.APIResourceList{{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{{Name: "configmaps", Kind: "ConfigMap", Namespaced: true, Verbs: []string{"get", "list", "watch"}}},
	}}
}

// rolloutResources is what a fake discovery serves once the test CRD is in.
func rolloutResources() []*metav1.APIResourceList {
	return append(coreResources(), &metav1.APIResourceList{
		GroupVersion: "example.com/v1",
		APIResources: []metav1.APIResource{
			{Name: "rollouts", Kind: "Rollout", Namespaced: true, Verbs: []string{"get", "list", "watch", "patch"}},
			{Name: "clusterthings", Kind: "ClusterThing", Namespaced: false, Verbs: []string{"get", "list"}},
		},
	})
}

func TestResolveExtraKind(t *testing.T) {
	disc := &fakediscovery.FakeDiscovery{Fake: &core.Fake{Resources: coreResources()}}
	mapper := restmapper.NewDeferredDiscoveryRESTMapperWithContext(memory.NewMemCacheClientWithContext(disc))
	ctx := context.Background()
	parse := func(s string) ExtraKind {
		k, err := ParseExtraKinds(s)
		if err != nil {
			t.Fatal(err)
		}
		return k[0]
	}
	if _, err := resolveExtraKind(ctx, mapper, parse("rollouts.example.com")); !meta.IsNoMatchError(err) {
		t.Fatalf("before the CRD: %v, want a no-match error", err)
	}
	disc.Resources = rolloutResources()
	mapper.ResetWithContext(ctx)
	for _, arg := range []string{"rollouts.example.com", "rollouts.v1.example.com"} {
		m, err := resolveExtraKind(ctx, mapper, parse(arg))
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if m.Resource != (schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "rollouts"}) || m.GroupVersionKind.Kind != "Rollout" {
			t.Errorf("%s resolved to %+v", arg, m)
		}
	}
	if _, err := resolveExtraKind(ctx, mapper, parse("clusterthings.example.com")); err == nil || !strings.Contains(err.Error(), "cluster-scoped") {
		t.Errorf("cluster-scoped kind: %v", err)
	}
}

// A custom workload is adopted and rolled like a built-in one, through the
// dynamic client with a JSON merge patch.
func TestSyncCustomKind(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "1"}))
	f.opts.ExtraKinds, _ = ParseExtraKinds("rollouts.example.com")
	f.opts.DiscoveryRecheckPeriod = 20 * time.Millisecond
	ctx := f.start()
	scheme := runtime.NewScheme()
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "rollouts"}
	obj := rollout("canary", auto())
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{gvr: "RolloutList"}, obj)
	disc := &lockedDiscovery{FakeDiscovery: &fakediscovery.FakeDiscovery{Fake: &core.Fake{}}}
	disc.setResources(rolloutResources())
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		f.c.customKinds.disc, f.c.customKinds.dyn = disc, dyn
		f.c.customKinds.run(runCtx)
		close(done)
	}()
	defer func() { stop(); <-done }()
	var k workloadAdapter
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		var ok bool
		k, ok = f.c.view.kinds.get("Rollout.example.com")
		return ok && k.informer().HasSynced(), nil
	}); err != nil {
		t.Fatalf("the custom kind was never watched: %v", err)
	}
	key := workloadKey{groupKind: "Rollout.example.com", name: cache.ObjectName{Namespace: testNamespace, Name: "canary"}}
	dyn.ClearActions()
	if err := f.c.syncHandler(ctx, key); err != nil {
		t.Fatal(err)
	}
	var patches []core.PatchAction
	for _, a := range dyn.Actions() {
		if p, ok := a.(core.PatchAction); ok {
			patches = append(patches, p)
		}
	}
	if len(patches) != 1 || patches[0].GetPatchType() != types.MergePatchType || patches[0].GetResource() != gvr {
		t.Fatalf("patches = %+v, want one merge patch of rollouts", patches)
	}
	if body := string(patches[0].GetPatch()); !strings.Contains(body, `"reroll.dev/consumed":"v1;key=`) || strings.Contains(body, "config-hash") {
		t.Errorf("adoption patch = %s", body)
	}
	f.expectEvents() // adopting sends no Event

	// A consumed change rolls it: the merge patch sets the template's hash.
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		w, err := getWorkload(k, key.name)
		return err == nil && w.meta.GetAnnotations()[plan.AnnotationConsumed] != "", nil
	}); err != nil {
		t.Fatalf("the adoption never reached the cache: %v", err)
	}
	f.seed(configMap("cfg", map[string]string{"a": "2"}))
	dyn.ClearActions()
	if err := f.c.syncHandler(ctx, key); err != nil {
		t.Fatal(err)
	}
	var body string
	for _, a := range dyn.Actions() {
		if p, ok := a.(core.PatchAction); ok {
			body = string(p.GetPatch())
		}
	}
	if !strings.Contains(body, `"spec":{"template":{"metadata":{"annotations":{"reroll.dev/config-hash":`) {
		t.Errorf("roll patch = %s", body)
	}
	f.expectEvents("Normal Rolled Rolled: consumed content changed in ConfigMap/cfg (keys a)")

	// When its CRD goes away, the kind is no longer watched.
	disc.setResources(coreResources())
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, ok := f.c.view.kinds.get("Rollout.example.com")
		return !ok, nil
	}); err != nil {
		t.Fatalf("the custom kind is still watched after its CRD went: %v", err)
	}
}

// lockedDiscovery is a fake discovery whose served resources a test can
// change while the controller reads them.
type lockedDiscovery struct {
	mu sync.Mutex
	*fakediscovery.FakeDiscovery
}

// setResources changes what is served.
func (d *lockedDiscovery) setResources(r []*metav1.APIResourceList) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Resources = r
}

// ServerGroupsWithContext implements discovery.DiscoveryInterfaceWithContext.
func (d *lockedDiscovery) ServerGroupsWithContext(ctx context.Context) (*metav1.APIGroupList, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.FakeDiscovery.ServerGroupsWithContext(ctx)
}

// ServerResourcesForGroupVersionWithContext implements
// discovery.DiscoveryInterfaceWithContext.
func (d *lockedDiscovery) ServerResourcesForGroupVersionWithContext(ctx context.Context, gv string) (*metav1.APIResourceList, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.FakeDiscovery.ServerResourcesForGroupVersionWithContext(ctx, gv)
}

// The patch of a roll by a restart sets spec.restartAt, not the template's
// hash; a roll by the template does the reverse.
func TestAnnotationPatchStrategies(t *testing.T) {
	restart, err := annotationPatch(patchWrites{state: "v1;key=k", rollout: "v1;at=1;from=complete;changes=", restartAt: "2026-12-01T12:00:00Z"}, []string{"spec", "template"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metadata":{"annotations":{"reroll.dev/consumed":"v1;key=k","reroll.dev/rollout":"v1;at=1;from=complete;changes="}},"spec":{"restartAt":"2026-12-01T12:00:00Z"}}`
	if string(restart) != want {
		t.Errorf("restart patch\n got %s\nwant %s", restart, want)
	}
	template, err := annotationPatch(patchWrites{state: "v1;key=k", configHash: "abc"}, []string{"spec", "template"})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"metadata":{"annotations":{"reroll.dev/consumed":"v1;key=k"}},"spec":{"template":{"metadata":{"annotations":{"reroll.dev/config-hash":"abc"}}}}}`
	if string(template) != want {
		t.Errorf("template patch\n got %s\nwant %s", template, want)
	}
}
