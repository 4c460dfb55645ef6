package controller

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// Every built-in kind of the table has an adapter with its Kind, resource
// and template path; an unknown one is an error that names the valid ones.
func TestBuiltinAdapter(t *testing.T) {
	client := fake.NewClientset()
	factory := singleFactory(client, Options{})
	type kind struct{ groupKind, group, path string }
	want := map[string]kind{
		"deployments":  {"Deployment", "apps", "spec.template"},
		"statefulsets": {"StatefulSet", "apps", "spec.template"},
		"daemonsets":   {"DaemonSet", "apps", "spec.template"},
		"cronjobs":     {"CronJob", "batch", "spec.jobTemplate.spec.template"},
		"jobs":         {"Job", "batch", "spec.template"},
	}
	for _, k := range Kinds() {
		a := newTypedAdapter(k, client, InformerFactories{factory})
		w := want[k.Name]
		if a.groupKind() != w.groupKind {
			t.Errorf("%s: groupKind %q, want %q", k.Name, a.groupKind(), w.groupKind)
		}
		if gr := a.groupResource(); gr != (schema.GroupResource{Group: w.group, Resource: k.Name}) {
			t.Errorf("%s: groupResource %v", k.Name, gr)
		}
		if p := strings.Join(k.templatePath, "."); p != w.path {
			t.Errorf("%s: templatePath %q, want %q", k.Name, p, w.path)
		}
		if a.informer() == nil {
			t.Errorf("%s: no informer", k.Name)
		}
	}
	if len(want) != len(Kinds()) || !slices.Equal(DefaultKindNames(), []string{"deployments", "statefulsets", "daemonsets", "cronjobs"}) {
		t.Errorf("Kinds() = %+v, defaults %q", Kinds(), DefaultKindNames())
	}
	err := unknownKindError("replicasets")
	if err == nil || !strings.Contains(err.Error(), `unknown kind "replicasets": the built-in kinds are deployments, statefulsets, daemonsets, cronjobs, jobs`) {
		t.Errorf("unknown resource: %v", err)
	}
}

// A typed adapter writes with a strategic merge patch, the given field
// manager, and returns the new resourceVersion; API errors pass through
// unchanged.
func TestTypedAdapterPatch(t *testing.T) {
	d := deployment("web", auto(), nil)
	client := fake.NewClientset(d)
	k, _ := KindNamed("deployments")
	a := newTypedAdapter(k, client, NewInformerFactories(client, Options{}))
	client.PrependReactor("patch", "deployments", func(action core.Action) (bool, runtime.Object, error) {
		patched := d.DeepCopy()
		patched.ResourceVersion = "42"
		return true, patched, nil
	})
	rv, err := a.write(context.Background(), cache.ObjectName{Namespace: testNamespace, Name: "web"}, patchWrites{state: "v1"}, "reroll")
	if err != nil || rv != "42" {
		t.Fatalf("patch = %q, %v", rv, err)
	}
	action := client.Actions()[0].(core.PatchAction)
	if action.GetPatchType() != types.StrategicMergePatchType || action.GetName() != "web" || action.GetNamespace() != testNamespace {
		t.Errorf("patch action %+v", action)
	}
	if opts := client.Actions()[0].(core.PatchActionImpl).GetPatchOptions(); opts.FieldManager != "reroll" {
		t.Errorf("field manager %q", opts.FieldManager)
	}
	gone := errors.New("boom")
	client.PrependReactor("patch", "deployments", func(core.Action) (bool, runtime.Object, error) { return true, nil, gone })
	if _, err := a.write(context.Background(), cache.ObjectName{Namespace: testNamespace, Name: "web"}, patchWrites{}, ""); !errors.Is(err, gone) {
		t.Errorf("error = %v, want %v", err, gone)
	}
}

// getWorkload reads the cache: a missing workload is NotFound for its
// resource, and a cached one is viewed with its references.
func TestGetWorkload(t *testing.T) {
	client := fake.NewClientset()
	factory := singleFactory(client, Options{})
	k, _ := KindNamed("deployments")
	a := newTypedAdapter(k, client, InformerFactories{factory})
	name := cache.ObjectName{Namespace: testNamespace, Name: "web"}
	_, err := getWorkload(a, name)
	if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `deployments.apps "web" not found`) {
		t.Errorf("missing workload: %v", err)
	}
	cached, _ := TransformForCache(deployment("web", auto(), envFromConfigMap("cfg")))
	if err := a.informer()[0].GetIndexer().Add(cached); err != nil {
		t.Fatal(err)
	}
	w, err := getWorkload(a, name)
	if err != nil {
		t.Fatal(err)
	}
	if w.meta.GetName() != "web" || len(w.references) != 1 || w.references[0].Ref != (plan.ConfigRef{Type: plan.TypeConfigMap, Name: "cfg"}) {
		t.Errorf("view = %+v", w)
	}
	if _, err := viewWorkload(a, &appsv1.Deployment{}); err == nil || !strings.Contains(err.Error(), "expected a cached Deployment") {
		t.Errorf("uncached object: %v", err)
	}
}

func TestWorkloadKeyString(t *testing.T) {
	if got := deploymentKey("web").String(); got != "Deployment team-a/web" {
		t.Errorf("String() = %q", got)
	}
}
