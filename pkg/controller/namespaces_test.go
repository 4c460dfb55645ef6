package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
)

// Workloads in Namespaces outside the selection are never synced; a
// Namespace that comes to match is picked up through its own event.
func TestNamespaceSelection(t *testing.T) {
	tests := []struct {
		name      string
		selector  string
		ignore    []string
		labels    map[string]string
		wantWrite bool
	}{
		{"no selection", "", nil, nil, true},
		{"selector matches", "reroll=on", nil, map[string]string{"reroll": "on"}, true},
		{"selector does not match", "reroll=on", nil, map[string]string{"reroll": "off"}, false},
		{"no labels", "reroll=on", nil, nil, false},
		{"ignored", "", []string{"kube-system", testNamespace}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deployment("web", auto(), envFromConfigMap("cfg"))
			f := newFixture(t, d, configMap("cfg", map[string]string{"a": "1"}))
			f.opts.NamespaceSelector, f.opts.IgnoreNamespaces = tt.selector, tt.ignore
			ctx := f.start()
			f.seed(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace, Labels: tt.labels}})
			f.sync(ctx, "web")
			if tt.wantWrite {
				f.expectWrites(f.baselinePatch("web", f.recordedState(d)))
			} else {
				f.expectWrites()
			}
		})
	}
}

// A Namespace's label change that makes it start or stop matching enqueues
// its workloads; other changes do not.
func TestNamespaceHandlerFollowsSelection(t *testing.T) {
	f := newFixture(t, deployment("web", auto(), envFromConfigMap("cfg")))
	f.opts.NamespaceSelector = "reroll=on"
	ctx := f.start()
	ns := func(labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace, Labels: labels}}
	}
	h := namespaceHandler(ctx, f.c)
	for _, tt := range []struct {
		name     string
		old, new map[string]string
		want     []string
	}{
		{"starts matching", nil, map[string]string{"reroll": "on"}, []string{"Deployment team-a/web"}},
		{"stops matching", map[string]string{"reroll": "on"}, map[string]string{"reroll": "off"}, []string{"Deployment team-a/web"}},
		{"other label", map[string]string{"reroll": "on"}, map[string]string{"reroll": "on", "x": "y"}, nil},
	} {
		h.OnUpdate(ns(tt.old), ns(tt.new))
		if got := drainQueue(f.c); !slices.Equal(got, tt.want) {
			t.Errorf("%s: enqueued %q, want %q", tt.name, got, tt.want)
		}
	}
}

// Ignored namespaces are excluded server-side from every watch.
func TestIgnoredNamespacesAreNotListed(t *testing.T) {
	client := fake.NewClientset()
	f := singleFactory(client, Options{Decisions: Decisions{IgnoreNamespaces: []string{"kube-system", "kube-public"}}})
	// Asking for an informer registers it with the factory.
	f.Core().V1().ConfigMaps().Informer()
	f.Core().V1().Secrets().Informer()
	f.Core().V1().Namespaces().Informer()
	f.Apps().V1().Deployments().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	defer f.Shutdown()
	defer cancel()
	f.StartWithContext(ctx)
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return len(client.Actions()) >= 8, nil // a list and a watch each
	}); err != nil {
		t.Fatal(err)
	}
	for _, a := range client.Actions() {
		l, ok := a.(core.ListAction)
		if !ok {
			continue
		}
		// Field selectors print their terms sorted.
		want := "metadata.namespace!=kube-public,metadata.namespace!=kube-system"
		if a.GetResource().Resource == "namespaces" {
			want = "metadata.name!=kube-public,metadata.name!=kube-system"
		}
		if got := l.GetListRestrictions().Fields.String(); got != want {
			t.Errorf("%s listed with field selector %q, want %q", a.GetResource().Resource, got, want)
		}
	}
}
