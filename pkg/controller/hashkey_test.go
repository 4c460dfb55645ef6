package controller

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/reroll/reroll/pkg/plan"
)

// keySecret is a hash key Secret holding key.
func keySecret(key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "reroll-hash-key", Namespace: "reroll-system"},
		Data:       map[string][]byte{hashKeyDataKey: key},
	}
}

func TestLoadOrCreateHashKeyLoadsExisting(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	secret := bytes.Repeat([]byte{3}, 32)
	client := fake.NewClientset(keySecret(secret))
	k, err := LoadOrCreateHashKey(ctx, client, "reroll-system", "reroll-hash-key", "reroll", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := testHashKey(t, 3); k.ID() != want.ID() {
		t.Errorf("key id %s, want %s", k.ID(), want.ID())
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("unexpected %s", a.GetVerb())
		}
	}
}

func TestLoadOrCreateHashKeyCreatesMissing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	k, err := LoadOrCreateHashKey(ctx, client, "reroll-system", "reroll-hash-key", "reroll", false)
	if err != nil {
		t.Fatal(err)
	}
	var created *corev1.Secret
	for _, a := range client.Actions() {
		if c, ok := a.(core.CreateActionImpl); ok {
			created = c.GetObject().(*corev1.Secret)
			if c.CreateOptions.FieldManager != "reroll" {
				t.Errorf("create without field manager: %+v", c.CreateOptions)
			}
		}
	}
	if created == nil || len(created.Data[hashKeyDataKey]) != plan.MinHashKeyBytes || created.Annotations[plan.AnnotationIgnore] != "true" {
		t.Fatalf("created %+v", created)
	}
	reloaded, err := LoadOrCreateHashKey(ctx, client, "reroll-system", "reroll-hash-key", "reroll", false)
	if err != nil || reloaded.ID() != k.ID() {
		t.Errorf("second start got key %s, %v; want the created %s", reloaded.ID(), err, k.ID())
	}
}

func TestLoadOrCreateHashKeyLosesRace(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	theirs := bytes.Repeat([]byte{9}, 32)
	client := fake.NewClientset()
	client.PrependReactor("create", "secrets", func(core.Action) (bool, runtime.Object, error) {
		// Another replica creates it between our get and our create.
		if err := client.Tracker().Add(keySecret(theirs)); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewAlreadyExists(corev1.Resource("secrets"), "reroll-hash-key")
	})
	k, err := LoadOrCreateHashKey(ctx, client, "reroll-system", "reroll-hash-key", "reroll", false)
	if err != nil || k.ID() != testHashKey(t, 9).ID() {
		t.Errorf("got %s, %v; want the other replica's key", k.ID(), err)
	}
}

func TestLoadOrCreateHashKeyErrors(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	short := fake.NewClientset(keySecret([]byte("short")))
	if _, err := LoadOrCreateHashKey(ctx, short, "reroll-system", "reroll-hash-key", "reroll", false); err == nil ||
		!strings.Contains(err.Error(), "hash key is 5 bytes, need at least 32") {
		t.Errorf("short key: %v", err)
	}
	noNamespace := fake.NewClientset()
	noNamespace.PrependReactor("create", "secrets", func(core.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(corev1.Resource("namespaces"), "reroll-system")
	})
	if _, err := LoadOrCreateHashKey(ctx, noNamespace, "reroll-system", "reroll-hash-key", "reroll", false); err == nil ||
		!strings.Contains(err.Error(), `namespace "reroll-system" does not exist`) {
		t.Errorf("missing namespace: %v", err)
	}
	forbidden := fake.NewClientset()
	forbidden.PrependReactor("get", "secrets", func(core.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "reroll-hash-key", nil)
	})
	if _, err := LoadOrCreateHashKey(ctx, forbidden, "reroll-system", "reroll-hash-key", "reroll", false); !apierrors.IsForbidden(err) {
		t.Errorf("forbidden: %v", err)
	}
}

func TestLoadOrCreateHashKeyDryRunCreatesNothing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	k, err := LoadOrCreateHashKey(context.WithoutCancel(ctx), client, "reroll-system", "reroll-hash-key", "reroll", true)
	if err != nil || k.ID() == "" {
		t.Fatalf("dry run: %v", err)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("dry run wrote: %s", a.GetVerb())
		}
	}
}

// Run publishes the decision settings on the hash key Secret once, and
// again only when they differ; the plugin reads them back as they were.
func TestPublishDecisions(t *testing.T) {
	ctx := context.Background()
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "reroll-hash-key", Namespace: "reroll-system"}}
	client := fake.NewClientset(key)
	values := map[string]string{"waves": "1,100%", "reload-on-delete": "true"}
	p := newSettingsPublisher(client, Options{ControllerNamespace: "reroll-system", HashKeySecret: "reroll-hash-key", Published: values, FieldManager: "reroll"})
	p.publish(ctx)
	p.publish(ctx)
	patches := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "patch" {
			patches++
			if opts := a.(core.PatchActionImpl).GetPatchOptions(); opts.FieldManager != "reroll" {
				t.Errorf("field manager %q", opts.FieldManager)
			}
		}
	}
	if patches != 1 {
		t.Errorf("%d patches, want 1: the second publish finds the same settings", patches)
	}
	s, _ := client.CoreV1().Secrets("reroll-system").Get(ctx, "reroll-hash-key", metav1.GetOptions{})
	got, err := ReadPublishedDecisions(s.Annotations[AnnotationSettings])
	if err != nil || !maps.Equal(got, values) {
		t.Errorf("read back %v, %v; want %v", got, err, values)
	}
	// Under --dry-run nothing is written.
	client = fake.NewClientset(key)
	newSettingsPublisher(client, Options{ControllerNamespace: "reroll-system", HashKeySecret: "reroll-hash-key", Published: values, DryRun: true}).publish(ctx)
	if len(client.Actions()) != 0 {
		t.Errorf("a dry run wrote %v", client.Actions())
	}
	for value, want := range map[string]string{
		"not json":                "is not reroll's settings",
		`{"format":9,"flags":{}}`: "has format 9",
	} {
		if _, err := ReadPublishedDecisions(value); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", value, err, want)
		}
	}
}
