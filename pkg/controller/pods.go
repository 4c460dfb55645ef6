package controller

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// The pods a bake watches. Only the namespaces of workloads whose bake is
// not over are watched, through one informer a namespace, from the first
// look at a bake there to the end of the last: never every pod of the
// cluster. One a namespace, not one a workload: the consumers of a
// ConfigMap or Secret are all in its namespace, so a change that rolls
// 1,000 workloads opens one watch, not 1,000 (docs/benchmarks.md). A pod's
// cache keeps what the bake reads (podTransform), not the pod.

// podSource returns the health of the new pods of a workload reroll rolled
// at started, or nil when they are not known (yet); release says the bake
// of key needs them no more.
type podSource interface {
	health(key workloadKey, namespace, selector string, started time.Time) *plan.PodHealth
	release(key workloadKey)
}

// podWatch is the controller's podSource: an informer per namespace with a
// baking workload, run under the context Run gives it; before that (a
// standby) it watches nothing.
type podWatch struct {
	client kubernetes.Interface
	// changed is called when a pod of a baking workload changes, so that
	// the rolls waiting on its bake are judged again.
	changed func(key workloadKey)

	mu         sync.Mutex
	ctx        context.Context
	namespaces map[string]*namespacePods
}

// namespacePods is the informer of one namespace's pods, and the baking
// workloads there, by their pod selectors.
type namespacePods struct {
	inf       cache.SharedIndexInformer
	stop      context.CancelFunc
	workloads map[workloadKey]labels.Selector
}

// newPodWatch returns a podWatch of client.
func newPodWatch(client kubernetes.Interface, changed func(workloadKey)) *podWatch {
	return &podWatch{client: client, changed: changed, namespaces: map[string]*namespacePods{}}
}

// run lets the watch start informers until ctx is done, then stops them.
func (p *podWatch) run(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for ns, w := range p.namespaces {
		w.stop()
		delete(p.namespaces, ns)
	}
	p.ctx = nil
}

// watching returns how many namespaces' pods are watched.
func (p *podWatch) watching() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.namespaces)
}

// health implements podSource, starting to watch the pods of namespace if
// it does not yet, for key's, which selector selects.
func (p *podWatch) health(key workloadKey, namespace, selector string, started time.Time) *plan.PodHealth {
	sel, err := labels.Parse(selector)
	if err != nil || selector == "" {
		return nil
	}
	inf := p.watch(key, namespace, sel)
	if inf == nil || !inf.HasSynced() {
		return nil
	}
	return selectedPodHealth(inf.GetStore().List(), sel, started)
}

// watch adds key, selecting its pods by sel, to its namespace's baking
// workloads and returns that namespace's pod informer, starting it if
// needed.
func (p *podWatch) watch(key workloadKey, namespace string, sel labels.Selector) cache.SharedIndexInformer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil {
		return nil
	}
	if w, ok := p.namespaces[namespace]; ok {
		w.workloads[key] = sel
		return w.inf
	}
	inf := coreinformers.NewPodInformer(p.client, namespace, 0, cache.Indexers{})
	_ = inf.SetTransform(podTransform)
	logger := klog.FromContext(p.ctx)
	onPod := func(obj any) {
		for _, k := range p.selecting(namespace, obj) {
			p.changed(k)
		}
	}
	_, _ = inf.AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    onPod,
		UpdateFunc: func(_, newObj any) { onPod(newObj) },
		DeleteFunc: onPod,
	}, cache.HandlerOptions{Logger: &logger})
	ctx, stop := context.WithCancel(p.ctx)
	go inf.RunWithContext(ctx)
	p.namespaces[namespace] = &namespacePods{inf: inf, stop: stop, workloads: map[workloadKey]labels.Selector{key: sel}}
	logger.V(2).Info("Watching the pods of a namespace with a baking workload", "namespace", namespace, "workload", key)
	return inf
}

// selecting returns the baking workloads of namespace that select the pod
// obj (a tombstone's pod too).
func (p *podWatch) selecting(namespace string, obj any) []workloadKey {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.namespaces[namespace]
	if !ok {
		return nil
	}
	var out []workloadKey
	for k, sel := range w.workloads {
		if sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, k)
		}
	}
	return out
}

// release implements podSource: the namespace's pods are watched no more
// once no workload there bakes.
func (p *podWatch) release(key workloadKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.namespaces[key.name.Namespace]
	if !ok {
		return
	}
	delete(w.workloads, key)
	if len(w.workloads) == 0 {
		w.stop()
		delete(p.namespaces, key.name.Namespace)
		if p.ctx != nil {
			klog.FromContext(p.ctx).V(2).Info("Stopped watching the pods of a namespace: no bake left there", "namespace", key.name.Namespace, "lastWorkload", key)
		}
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

// selectedPodHealth sums up the pods, cached by podTransform, that a
// workload's new revision runs: those of objs that sel selects, created
// since the roll at started, not terminating; nil when sel selects none.
func selectedPodHealth(objs []any, sel labels.Selector, started time.Time) *plan.PodHealth {
	var selected []*corev1.Pod
	for _, obj := range objs {
		if p, ok := obj.(*corev1.Pod); ok && sel.Matches(labels.Set(p.Labels)) {
			selected = append(selected, p)
		}
	}
	if len(selected) == 0 {
		return nil
	}
	return podHealthOf(selected, started)
}

// podHealthOf sums up a workload's pods: those of its new revision, created
// since the roll at started, not terminating.
func podHealthOf(pods []*corev1.Pod, started time.Time) *plan.PodHealth {
	h := &plan.PodHealth{}
	allReady := true
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.CreationTimestamp.Time.Before(started) {
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
			// Stopped and not started again yet: kubelet counts the restart
			// only when it starts the container again, and the workload's
			// status may report it unavailable before that.
			if t := cs.State.Terminated; t != nil {
				h.Exits = append(h.Exits, plan.ContainerExit{Pod: p.Name, Container: cs.Name, ExitCode: t.ExitCode, Reason: t.Reason, At: t.FinishedAt.Time})
			}
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
