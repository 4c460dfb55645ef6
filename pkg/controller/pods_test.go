package controller

import (
	"context"
	"reflect"
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

// TestPodHealthOf checks how the bake sums up a workload's pods: only the
// new revision's, restarts with when they happened, crash loops, and
// containers that stopped and have not started again yet.
func TestPodHealthOf(t *testing.T) {
	rolled := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(s int) metav1.Time { return metav1.NewTime(rolled.Add(time.Duration(s) * time.Second)) }
	withContainer := func(p *corev1.Pod, cs corev1.ContainerStatus) *corev1.Pod {
		cs.Name = "app"
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, cs)
		return p
	}
	notReady := func(p *corev1.Pod) *corev1.Pod {
		p.Status.Conditions[0].Status = corev1.ConditionFalse
		return p
	}
	tests := []struct {
		name string
		pods []*corev1.Pod
		want plan.PodHealth
	}{
		{"an old pod is not the new revision's", []*corev1.Pod{podOf("ns", "old", "web", rolled.Add(-time.Minute))},
			plan.PodHealth{}},
		{"a healthy pod", []*corev1.Pod{withContainer(podOf("ns", "web-1", "web", rolled.Add(time.Second)),
			corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(2)}}})},
			plan.PodHealth{Pods: 1, Since: at(1).Time}},
		{"exited, not restarted yet", []*corev1.Pod{withContainer(notReady(podOf("ns", "web-1", "web", rolled.Add(time.Second))),
			corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: at(4)}}})},
			plan.PodHealth{Pods: 1, Since: at(1).Time,
				Exits: []plan.ContainerExit{{Pod: "web-1", Container: "app", ExitCode: 1, Reason: "Error", At: at(4).Time}}}},
		{"restarted: from its last termination to running again", []*corev1.Pod{withContainer(podOf("ns", "web-1", "web", rolled.Add(time.Second)),
			corev1.ContainerStatus{RestartCount: 2, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(9)}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: at(8)}}})},
			plan.PodHealth{Pods: 1, Since: at(1).Time, Restarts: 2, RestartedPods: []string{"web-1"}, LastRestart: at(9).Time}},
		{"crash-looping", []*corev1.Pod{withContainer(notReady(podOf("ns", "web-1", "web", rolled.Add(time.Second))),
			corev1.ContainerStatus{RestartCount: 1, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: at(5)}}})},
			plan.PodHealth{Pods: 1, Since: at(1).Time, Restarts: 1, RestartedPods: []string{"web-1"}, LastRestart: at(5).Time, CrashLooping: []string{"web-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// ReadySince stays zero: the pods' Ready conditions carry no time.
			got := podHealthOf(tt.pods, rolled)
			if got == nil || !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("podHealthOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}
