package controller

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// The informers' event handlers: they turn events into workload keys in the
// queue, and drop the events no sync could act on.

// addWorkloadKind indexes a workload kind by what it consumes, enqueues its
// workloads on their own events, and syncs them from now on.
func (c *Controller) addWorkloadKind(ctx context.Context, a workloadAdapter) error {
	logger := klog.FromContext(ctx)
	inf := a.informer()
	if err := inf.AddIndexers(c.view.indexers(a)); err != nil {
		return fmt.Errorf("indexing %s: %w", a.groupKind(), err)
	}
	if err := inf.AddEventHandlerWithOptions(c.workloadHandler(ctx, a), cache.HandlerOptions{Logger: &logger}); err != nil {
		return fmt.Errorf("watching %s: %w", a.groupKind(), err)
	}
	c.view.kinds.add(a)
	return nil
}

// workloadHandler returns the event handler of a workload kind: it enqueues
// a workload when it appears or goes (at once), or changes in a way a sync
// could act on (after the debounce delay).
func (c *Controller) workloadHandler(ctx context.Context, a workloadAdapter) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			c.enqueueWorkload(ctx, a, obj, 0)
			c.enqueueReferrers(a, obj, 0)
			c.observeRollout(ctx, a, nil, obj)
		},
		UpdateFunc: func(oldObj, newObj any) {
			// Debounced like config changes, so that several updates (often
			// reroll's own write among them) sync once.
			if workloadChanged(oldObj, newObj) {
				c.enqueueWorkload(ctx, a, newObj, c.opts.Debounce)
				c.enqueueReferrers(a, newObj, c.opts.Debounce)
			}
			c.observeRollout(ctx, a, oldObj, newObj)
		},
		DeleteFunc: func(obj any) {
			// The sync finds it gone and forgets it.
			if name, err := cache.DeletionHandlingObjectToName(obj); err == nil {
				key := workloadKey{groupKind: a.groupKind(), name: name}
				c.queue.Add(key)
				c.memory.slots.gone(key)
			}
		},
	}
}

// enqueueReferrers enqueues, after delay, the objects that run the pod
// template of Deployment obj (Argo Rollouts' spec.workloadRef), so that they
// read its references again: a Deployment that appears unblocks them.
func (c *Controller) enqueueReferrers(a workloadAdapter, obj any, delay time.Duration) {
	d, ok := obj.(*cachedWorkload)
	if !ok || a.groupKind() != "Deployment" {
		return
	}
	for other, w := range c.view.kinds.inNamespace(d.Namespace) {
		if _, resolves := other.(templateResolver); resolves && w.WorkloadRef == d.Name {
			c.enqueue(keyOfCached(other, w), delay)
		}
	}
}

// enqueueWorkload enqueues a workload, after delay, if it wants syncing.
func (c *Controller) enqueueWorkload(ctx context.Context, a workloadAdapter, obj any, delay time.Duration) {
	w, err := viewWorkload(a, obj)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Unexpected object in workload informer", "kind", a.groupKind())
		return
	}
	if c.view.wantsSync(w) {
		c.enqueue(workloadKey{groupKind: a.groupKind(), name: cache.MetaObjectToName(w.meta)}, delay)
	}
}

// enqueue adds a key after delay; the delaying queue keeps the earliest due
// time of a key, so repeated calls within delay sync it once.
func (c *Controller) enqueue(key workloadKey, delay time.Duration) {
	if delay > 0 {
		c.queue.AddAfter(key, delay)
	} else {
		c.queue.Add(key)
	}
}

// workloadChanged filters workload updates down to those a sync could act
// on: a new generation (the spec changed), changed annotations, or a resync
// (same resourceVersion), which re-checks the workload on purpose. Status
// updates, the bulk of Deployment traffic during rollouts, are dropped.
func workloadChanged(oldObj, newObj any) bool {
	o, err1 := metaOf(oldObj)
	n, err2 := metaOf(newObj)
	if err1 != nil || err2 != nil {
		return true
	}
	return o.GetResourceVersion() == n.GetResourceVersion() ||
		o.GetGeneration() != n.GetGeneration() ||
		!maps.Equal(o.GetAnnotations(), n.GetAnnotations())
}

// metaOf returns an object's metadata.
func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

// typedConfig is a ConfigMap or a Secret.
type typedConfig interface {
	*corev1.ConfigMap | *corev1.Secret
	workloadObject
}

// configHandler returns the event handler of ConfigMaps or Secrets: it
// enqueues the workloads consuming an object when the object's content or
// ignore annotation changes, after the debounce delay.
func configHandler[T typedConfig](ctx context.Context, c *Controller, typ plan.ConfigType) cache.TypedResourceEventHandler[T] {
	return cache.TypedResourceEventHandlerDetailedFuncs[T]{
		AddFunc: func(obj T, isInInitialList bool) {
			// The initial list needs nothing: every workload is synced on its
			// own initial add. Later adds are (re-)creations that can unblock
			// a workload or change what it consumes.
			if !isInInitialList {
				c.enqueueConsumers(ctx, obj.GetNamespace(), plan.ConfigRef{Type: typ, Name: obj.GetName()}, nil)
			}
		},
		UpdateFunc: func(oldObj, newObj T) {
			c.checkRelease(ctx, typ, oldObj, newObj)
			switch classifyConfigUpdate(oldObj, newObj, c.opts.ReloaderAnnotations) {
			case configUnchanged:
			case configIgnoredChange:
				c.reporter.metrics.skipped.WithLabelValues(skipIgnored).Inc()
			default:
				c.enqueueConsumers(ctx, newObj.GetNamespace(), plan.ConfigRef{Type: typ, Name: newObj.GetName()}, oldObj)
			}
		},
		DeleteFunc: func(d cache.DeletedObject[T]) {
			name := d.GetObjectName()
			c.enqueueConsumers(ctx, name.Namespace, plan.ConfigRef{Type: typ, Name: name.Name}, nil)
		},
	}
}

// checkRelease warns, on the object and in the log, when an update leaves
// a ConfigMap's or Secret's reroll.dev/release naming a change that is not
// its content now (set for content that changed since, or mistyped):
// nothing is released then, and the operator must know.
func (c *Controller) checkRelease(ctx context.Context, typ plan.ConfigType, oldObj, newObj metav1.Object) {
	v, ok := newObj.GetAnnotations()[plan.AnnotationRelease]
	if !ok || (v == oldObj.GetAnnotations()[plan.AnnotationRelease] && maps.Equal(plan.CachedDigests(oldObj), plan.CachedDigests(newObj))) {
		return
	}
	ref := plan.ConfigRef{Type: typ, Name: newObj.GetName()}
	current := plan.CalculateChangeID(c.opts.HashKey, ref, plan.CachedDigests(newObj))
	if plan.IsReleased(newObj.GetAnnotations(), current) {
		return
	}
	_, digest, _ := strings.Cut(string(current), ":")
	if obj, ok := newObj.(runtime.Object); ok {
		c.reporter.warn(ctx, obj, plan.ReasonInvalidAnnotation, "Release", fmt.Sprintf(
			"%s=%q names no change of its current content, which is %s; nothing is released", plan.AnnotationRelease, v, digest))
	}
}

// configUpdate classifies an update of a ConfigMap or Secret.
type configUpdate int

const (
	// configUnchanged: labels, other metadata or a resync; cannot roll.
	configUnchanged configUpdate = iota
	// configIgnoredChange: content changed on an object that stays ignored.
	configIgnoredChange
	// configChanged: content or the ignore annotation changed.
	configChanged
)

// configPolicyAnnotations are the annotations of a ConfigMap or Secret
// whose change can matter to its consumers even when its content does not
// change (reloader adds Reloader's).
func configPolicyAnnotations(reloader bool) []string {
	keys := []string{plan.AnnotationIgnore, plan.AnnotationPaused, plan.AnnotationWaves, plan.AnnotationRolloutWindow, plan.AnnotationRelease}
	if reloader {
		keys = append(keys, plan.ReloaderIgnore, plan.ReloaderMatch)
	}
	return keys
}

// classifyConfigUpdate says whether an update of a ConfigMap or Secret can
// matter to its consumers: its content, or the annotations that ignore,
// pause, set waves for or (with reloader) match it.
func classifyConfigUpdate(oldObj, newObj any, reloader bool) configUpdate {
	o, err1 := metaOf(oldObj)
	n, err2 := metaOf(newObj)
	if err1 != nil || err2 != nil {
		return configChanged
	}
	for _, k := range configPolicyAnnotations(reloader) {
		if o.GetAnnotations()[k] != n.GetAnnotations()[k] {
			return configChanged
		}
	}
	if maps.Equal(plan.CachedDigests(oldObj), plan.CachedDigests(newObj)) {
		return configUnchanged
	}
	if ignored, _ := plan.IsIgnored(n.GetAnnotations(), reloader); ignored {
		return configIgnoredChange
	}
	return configChanged
}

// enqueueConsumers enqueues every workload that consumes ref, after the
// debounce delay, and marks the change in each consumer's pending burst:
// the queue alone keeps the earliest due time of a key, which an older
// entry can make too early (see burst.go). It also records the change as
// pending, which makes the consumer urgent in the queue and, for a consumer
// not adopted yet, keeps old, the object before an update (nil for a
// creation or deletion), as its baseline (see changes.go), in memory and
// in the pending store.
func (c *Controller) enqueueConsumers(ctx context.Context, namespace string, ref plan.ConfigRef, old metav1.Object) {
	var unadopted []workloadKey
	for _, m := range c.view.changedConsumers(namespace, ref) {
		// A workload's own window (Reloader's pause period) replaces
		// --debounce.
		window := c.opts.Debounce
		if m.o.Window > 0 {
			window = m.o.Window
		}
		c.memory.bursts.changed(m.key, window)
		var before metav1.Object
		if _, adopted := m.w.meta.GetAnnotations()[plan.AnnotationConsumed]; !adopted {
			before = old
		}
		if c.memory.changes.changed(m.key, ref, before) {
			unadopted = append(unadopted, m.key)
		}
		c.enqueue(m.key, window)
	}
	// Written down too, so that a crash does not lose it (pendingstore.go).
	c.pending.add(namespace, ref, old, unadopted)
}

// namespaceHandler returns the event handler of Namespaces: when a
// Namespace's pause annotation changes, or it starts or stops matching the
// namespace selector, it enqueues every workload of the Namespace, at once,
// so that held rolls happen, new ones are held, and newly selected
// workloads are adopted or catch up.
func namespaceHandler(ctx context.Context, c *Controller) cache.TypedResourceEventHandler[*corev1.Namespace] {
	return cache.TypedResourceEventHandlerFuncs[*corev1.Namespace]{
		UpdateFunc: func(oldObj, newObj *corev1.Namespace) {
			selected := func(ns *corev1.Namespace) bool { return c.view.namespaceSelector.Matches(labels.Set(ns.Labels)) }
			if oldObj.Annotations[plan.AnnotationPaused] == newObj.Annotations[plan.AnnotationPaused] &&
				oldObj.Annotations[plan.AnnotationRolloutWindow] == newObj.Annotations[plan.AnnotationRolloutWindow] && selected(oldObj) == selected(newObj) {
				return
			}
			for a, w := range c.view.kinds.inNamespace(newObj.Name) {
				c.enqueueWorkload(ctx, a, w, 0)
			}
		},
	}
}
