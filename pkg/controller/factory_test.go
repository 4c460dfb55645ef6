package controller

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2/ktesting"

	"github.com/reroll/reroll/pkg/plan"
)

// The factory lists ConfigMaps and Secrets through --config-selector and
// the namespace, lists workloads through the namespace only, and caches
// transformed objects.
func TestNewInformerFactories(t *testing.T) {
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "team-a", Labels: map[string]string{"reroll": "yes"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}}, Data: map[string]string{"k": "value"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unselected", Namespace: "team-a"}},
	)
	f := singleFactory(client, Options{Decisions: Decisions{Namespaces: []string{"team-a"}, ConfigSelector: "reroll=yes"}, ResyncPeriod: time.Hour})
	cms := f.Core().V1().ConfigMaps()
	_ = f.Core().V1().Secrets().Informer()
	_ = f.Apps().V1().Deployments().Informer()
	_ = f.Core().V1().Namespaces().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	defer f.Shutdown()
	defer cancel()
	f.StartWithContext(ctx)
	if err := f.WaitForCacheSyncWithContext(ctx).AsError(); err != nil {
		t.Fatal(err)
	}
	selectors := map[string]string{}
	for _, a := range client.Actions() {
		l, ok := a.(core.ListAction)
		switch {
		case !ok:
		case a.GetResource().Resource == "namespaces":
			// Cluster-scoped: the one Namespace, by name, which RBAC can grant.
			if f := l.GetListRestrictions().Fields.String(); f != "metadata.name=team-a" {
				t.Errorf("namespaces listed with field selector %q", f)
			}
		case a.GetNamespace() != "team-a":
			t.Errorf("%s listed in namespace %q", a.GetResource().Resource, a.GetNamespace())
		default:
			selectors[a.GetResource().Resource] = l.GetListRestrictions().Labels.String()
		}
	}
	want := map[string]string{"configmaps": "reroll=yes", "secrets": "reroll=yes", "deployments": ""}
	for r, sel := range want {
		if got, ok := selectors[r]; !ok || got != sel {
			t.Errorf("%s listed with selector %q (listed: %v), want %q", r, got, ok, sel)
		}
	}
	var cached *corev1.ConfigMap
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		var err error
		cached, err = cms.Lister().ConfigMaps("team-a").Get("cfg")
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if cached.Data["k"] != plan.DigestValue("value") || cached.ManagedFields != nil {
		t.Errorf("cached ConfigMap not transformed: %+v", cached)
	}
	if _, err := cms.Lister().ConfigMaps("team-a").Get("unselected"); err == nil {
		t.Error("a ConfigMap outside --config-selector was cached")
	}
}

// With several namespaces (--namespaces), each is listed and watched on
// its own, so a Role in each is all reroll needs: nothing is listed across
// namespaces, Namespaces are not read when skipped, and the caches read as
// one hold exactly the watched namespaces' objects.
func TestInformerFactoriesPerNamespace(t *testing.T) {
	var objects []runtime.Object
	for _, ns := range []string{"a", "b", "unwatched"} {
		objects = append(objects, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: ns}, Data: map[string]string{"k": ns}},
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}})
	}
	client := fake.NewClientset(objects...)
	_, ctx := ktesting.NewTestContext(t)
	opts := Options{Decisions: Decisions{Namespaces: []string{"a", "b"}, Kinds: []string{"deployments"}}, SkipNamespaceObjects: true,
		HashKey: testHashKey(t, 1), FieldManager: "reroll"}
	factories := NewInformerFactories(client, opts)
	c, err := NewController(ctx, client, nil, factories, events.NewFakeRecorder(10), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer factories.Shutdown()
	defer cancel()
	factories.StartWithContext(ctx)
	factories.WaitForCacheSync(ctx)
	if !c.HasSynced() {
		t.Fatal("caches not synced")
	}
	for _, a := range client.Actions() {
		if ns := a.GetNamespace(); a.GetResource().Resource == "namespaces" || (ns != "a" && ns != "b") {
			t.Errorf("%s %s in namespace %q: want only namespaces a and b, and no Namespaces", a.GetVerb(), a.GetResource().Resource, ns)
		}
	}
	deployments, _ := c.view.kinds.get("Deployment")
	for ns, want := range map[string]bool{"a": true, "b": true, "unwatched": false} {
		_, cm := c.view.lookupConfig(ns, plan.ConfigRef{Type: plan.TypeConfigMap, Name: "cfg"})
		_, deploy, _ := deployments.informer().GetIndexer().GetByKey(ns + "/web")
		if cm != want || deploy != want {
			t.Errorf("namespace %s: ConfigMap cached %v, Deployment cached %v; want %v", ns, cm, deploy, want)
		}
	}
	if keys := c.view.configs[plan.TypeConfigMap].(indexerGroup).ListKeys(); len(keys) != 2 {
		t.Errorf("ConfigMaps cached: %v, want a/cfg and b/cfg", keys)
	}
}
