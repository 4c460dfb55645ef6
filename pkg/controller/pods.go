package controller

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// The pods a bake watches. Only the pods of workloads whose bake is not
// over are watched, each workload's through an informer of its own that
// lists its namespace by its selector, from the first look at the bake to
// its end: never every pod of the cluster. A pod's cache keeps what the
// bake reads (podHealthOf), not the pod.

// podSource returns the health of the new pods of a workload reroll rolled
// at started, or nil when they are not known (yet); release says the bake
// of key needs them no more.
type podSource interface {
	health(key workloadKey, namespace, selector string, started time.Time) *plan.PodHealth
	release(key workloadKey)
}

// podWatch is the controller's podSource: an informer per watched
// workload, run under the context Run gives it; before that (a standby)
// it watches nothing.
type podWatch struct {
	client kubernetes.Interface
	// changed is called when a watched workload's pods change, so that the
	// rolls waiting on its bake are judged again.
	changed func(key workloadKey)

	mu      sync.Mutex
	ctx     context.Context
	watches map[workloadKey]*podInformer
}

// podInformer is the informer of one workload's pods.
type podInformer struct {
	selector string
	inf      cache.SharedIndexInformer
	stop     context.CancelFunc
}

// newPodWatch returns a podWatch of client.
func newPodWatch(client kubernetes.Interface, changed func(workloadKey)) *podWatch {
	return &podWatch{client: client, changed: changed, watches: map[workloadKey]*podInformer{}}
}

// run lets the watch start informers until ctx is done, then stops them.
func (p *podWatch) run(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, w := range p.watches {
		w.stop()
		delete(p.watches, key)
	}
	p.ctx = nil
}

// watching returns how many workloads' pods are watched.
func (p *podWatch) watching() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watches)
}

// health implements podSource, starting to watch key's pods, in namespace
// by selector, if it does not yet.
func (p *podWatch) health(key workloadKey, namespace, selector string, started time.Time) *plan.PodHealth {
	if selector == "" {
		return nil
	}
	inf := p.watch(key, namespace, selector)
	if inf == nil || !inf.HasSynced() {
		return nil
	}
	return podHealthOf(inf.GetStore().List(), started)
}

// watch returns the informer of key's pods, starting it if needed.
func (p *podWatch) watch(key workloadKey, namespace, selector string) cache.SharedIndexInformer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil {
		return nil
	}
	if w, ok := p.watches[key]; ok && w.selector == selector {
		return w.inf
	} else if ok {
		w.stop()
	}
	inf := coreinformers.NewFilteredPodInformer(p.client, namespace, 0, cache.Indexers{}, func(o *metav1.ListOptions) {
		o.LabelSelector = selector
	})
	_ = inf.SetTransform(podTransform)
	logger := klog.FromContext(p.ctx)
	_, _ = inf.AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.changed(key) },
		UpdateFunc: func(any, any) { p.changed(key) },
		DeleteFunc: func(any) { p.changed(key) },
	}, cache.HandlerOptions{Logger: &logger})
	ctx, stop := context.WithCancel(p.ctx)
	go inf.RunWithContext(ctx)
	p.watches[key] = &podInformer{selector: selector, inf: inf, stop: stop}
	logger.V(2).Info("Watching the pods of a baking workload", "workload", key, "selector", selector)
	return inf
}

// release implements podSource.
func (p *podWatch) release(key workloadKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w, ok := p.watches[key]; ok {
		w.stop()
		delete(p.watches, key)
	}
}

// podTransform keeps of a pod what the bake reads: its name, namespace,
// labels, creation and deletion times, Ready condition and container
// statuses.
func podTransform(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	kept := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
		Labels: p.Labels, CreationTimestamp: p.CreationTimestamp, DeletionTimestamp: p.DeletionTimestamp}}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			kept.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status, LastTransitionTime: c.LastTransitionTime}}
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		kept.Status.ContainerStatuses = append(kept.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: cs.Name, RestartCount: cs.RestartCount, State: cs.State, LastTerminationState: cs.LastTerminationState})
	}
	return kept, nil
}

// podHealthOf sums up the pods, cached by podTransform, that a workload's
// new revision runs: those created since the roll at started, not
// terminating.
func podHealthOf(objs []any, started time.Time) *plan.PodHealth {
	h := &plan.PodHealth{}
	allReady := true
	for _, obj := range objs {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.DeletionTimestamp != nil || p.CreationTimestamp.Time.Before(started) {
			continue
		}
		h.Pods++
		if h.Since.IsZero() || p.CreationTimestamp.Time.Before(h.Since) {
			h.Since = p.CreationTimestamp.Time
		}
		restarts, crashLooping := 0, false
		for _, cs := range p.Status.ContainerStatuses {
			restarts += int(cs.RestartCount)
			if cs.RestartCount == 0 {
				continue
			}
			// A restarted container last stopped at its last termination, and
			// started again when it now runs since.
			if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(h.LastRestart) {
				h.LastRestart = t.FinishedAt.Time
			}
			if r := cs.State.Running; r != nil && r.StartedAt.After(h.LastRestart) {
				h.LastRestart = r.StartedAt.Time
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			crashLooping = crashLooping || (cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff")
		}
		if restarts > 0 {
			h.Restarts += restarts
			h.RestartedPods = append(h.RestartedPods, p.Name)
		}
		if crashLooping {
			h.CrashLooping = append(h.CrashLooping, p.Name)
		}
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
				if c.LastTransitionTime.After(h.ReadySince) {
					h.ReadySince = c.LastTransitionTime.Time
				}
			}
		}
		allReady = allReady && ready
	}
	if !allReady || h.Pods == 0 {
		h.ReadySince = time.Time{}
	}
	return h
}
