package controller

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// podOf returns a pod named name in namespace with labels app=app, created
// at created and Ready.
func podOf(namespace, name, app string, created time.Time) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app": app},
			CreationTimestamp: metav1.NewTime(created)},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

// TestPodWatchOneWatchANamespace checks that the bake's pods are watched
// one namespace at a time: two baking workloads in one namespace share a
// watch, a pod event reaches only the workloads that select the pod, each
// workload's health counts only its own pods, and a namespace's watch
// ends when its last workload is released.
func TestPodWatchOneWatchANamespace(t *testing.T) {
	started := time.Now().Add(-time.Minute)
	client := fake.NewClientset(
		podOf("a", "web-1", "web", started.Add(time.Second)),
		podOf("a", "web-2", "web", started.Add(time.Second)),
		podOf("a", "old-web", "web", started.Add(-time.Hour)), // of the revision before the roll
		podOf("a", "api-1", "api", started.Add(time.Second)),
		podOf("b", "web-1", "web", started.Add(time.Second)),
	)
	var mu sync.Mutex
	var changed []workloadKey
	p := newPodWatch(client, func(k workloadKey) {
		mu.Lock()
		defer mu.Unlock()
		changed = append(changed, k)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	key := func(ns, name string) workloadKey {
		return workloadKey{groupKind: "Deployment", name: cache.ObjectName{Namespace: ns, Name: name}}
	}
	web, api, webB := key("a", "web"), key("a", "api"), key("b", "web")
	healthOf := func(k workloadKey, selector string) *plan.PodHealth {
		t.Helper()
		var h *plan.PodHealth
		if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			h = p.health(k, k.name.Namespace, selector, started)
			return h != nil, nil
		}); err != nil {
			t.Fatalf("no pod health of %v: %v", k, err)
		}
		return h
	}
	if h := healthOf(web, "app=web"); h.Pods != 2 {
		t.Errorf("web's new pods: %d, want 2 (web-1 and web-2, not the older pod nor api's)", h.Pods)
	}
	if h := healthOf(api, "app=api"); h.Pods != 1 {
		t.Errorf("api's new pods: %d, want 1", h.Pods)
	}
	if n := p.watching(); n != 1 {
		t.Errorf("watching %d namespaces for two workloads in one, want 1", n)
	}
	healthOf(webB, "app=web")
	if n := p.watching(); n != 2 {
		t.Errorf("watching %d namespaces, want 2", n)
	}

	mu.Lock()
	changed = nil
	mu.Unlock()
	if _, err := client.CoreV1().Pods("a").Create(ctx, podOf("a", "api-2", "api", time.Now()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(changed, api), nil
	}); err != nil {
		t.Fatalf("a new pod of api did not reach api: %v", err)
	}
	mu.Lock()
	if slices.Contains(changed, web) || slices.Contains(changed, webB) {
		t.Errorf("a pod of api reached %v, want only api", changed)
	}
	mu.Unlock()

	p.release(web)
	if n := p.watching(); n != 2 {
		t.Errorf("after web's release: watching %d namespaces, want 2 (api still bakes in a)", n)
	}
	p.release(api)
	p.release(api) // twice: the second does nothing
	if n := p.watching(); n != 1 {
		t.Errorf("after api's release: watching %d namespaces, want 1", n)
	}
	p.release(webB)
	if n := p.watching(); n != 0 {
		t.Errorf("after every release: watching %d namespaces, want 0", n)
	}
	if h := p.health(web, "a", "", started); h != nil {
		t.Errorf("health without a selector: %+v, want nil", h)
	}
}
