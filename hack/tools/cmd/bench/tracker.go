package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// deployState is what the tracker knows of one Deployment.
type deployState struct {
	// template is the pod template's annotations, canonically formatted;
	// any change of it is a roll.
	template string
	// consumed is true once reroll has adopted the Deployment.
	consumed bool
	// generation is the Deployment's metadata.generation.
	generation int64
	// changes counts template annotation changes since the tracker started.
	changes int
	// changedAt is when the tracker saw the last change.
	changedAt time.Time
}

// tracker follows Deployments through a watch and records, for each, when
// its pod template annotations changed and how often. Change times are
// taken as the watch event arrives.
type tracker struct {
	mu     sync.Mutex
	deps   map[string]*deployState // by namespace/name
	notify chan struct{}           // closed and replaced on every change
	err    error                   // why the watch ended, if it did
	stop   func()
}

// startTracker lists the Deployments labelled with selector in namespace
// ("" for all) and watches them from the list's resourceVersion on. It
// stops when the scenario ends.
func (e *env) startTracker(ctx context.Context, namespace, selector string) (*tracker, error) {
	client := e.cluster.client
	list, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	t := &tracker{deps: map[string]*deployState{}, notify: make(chan struct{})}
	for i := range list.Items {
		t.apply(&list.Items[i], time.Now())
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := watchtools.NewRetryWatcherWithContext(wctx, list.ResourceVersion, deploymentWatcher(client, namespace, selector))
	if err != nil {
		cancel()
		return nil, err
	}
	t.stop = func() {
		cancel()
		w.Stop()
		<-w.Done()
	}
	e.onCleanup(t.stop)
	go t.run(w)
	return t, nil
}

// deploymentWatcher returns what the retry watcher (re)starts its watches
// with.
func deploymentWatcher(client kubernetes.Interface, namespace, selector string) cache.WatcherWithContext {
	return &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector = selector
			return client.AppsV1().Deployments(namespace).Watch(ctx, opts)
		},
	}
}

// run applies watch events until the watch ends.
func (t *tracker) run(w *watchtools.RetryWatcher) {
	for ev := range w.ResultChan() {
		now := time.Now()
		switch ev.Type {
		case watch.Added, watch.Modified:
			if d, ok := ev.Object.(*appsv1.Deployment); ok {
				t.apply(d, now)
			}
		case watch.Deleted:
			if d, ok := ev.Object.(*appsv1.Deployment); ok {
				t.mu.Lock()
				delete(t.deps, d.Namespace+"/"+d.Name)
				t.broadcastLocked()
				t.mu.Unlock()
			}
		case watch.Error:
			t.mu.Lock()
			t.err = fmt.Errorf("deployment watch failed: %v", ev.Object)
			t.broadcastLocked()
			t.mu.Unlock()
		}
	}
	t.mu.Lock()
	if t.err == nil {
		t.err = fmt.Errorf("deployment watch ended")
	}
	t.broadcastLocked()
	t.mu.Unlock()
}

// apply records the state of a Deployment seen at now.
func (t *tracker) apply(d *appsv1.Deployment, now time.Time) {
	tmpl := formatAnnotations(d.Spec.Template.Annotations)
	_, consumed := d.Annotations[annotationConsumed]
	t.mu.Lock()
	defer t.mu.Unlock()
	key := d.Namespace + "/" + d.Name
	s, ok := t.deps[key]
	if !ok {
		s = &deployState{template: tmpl}
		t.deps[key] = s
	}
	if s.template != tmpl {
		s.template = tmpl
		s.changes++
		s.changedAt = now
	}
	s.consumed = consumed
	s.generation = d.Generation
	t.broadcastLocked()
}

// broadcastLocked wakes every waiter; t.mu must be held.
func (t *tracker) broadcastLocked() {
	close(t.notify)
	t.notify = make(chan struct{})
}

// formatAnnotations formats annotations canonically: sorted k=v lines.
func formatAnnotations(a map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(a)) {
		b.WriteString(k + "=" + a[k] + "\n")
	}
	return b.String()
}

// wait returns once cond holds for the tracked Deployments, or fails when
// timeout passes. cond runs under the tracker's lock and returns whether it
// holds and a progress note for the timeout error.
func (t *tracker) wait(ctx context.Context, timeout time.Duration, what string, cond func(deps map[string]*deployState) (bool, string)) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		t.mu.Lock()
		ok, progress := cond(t.deps)
		ch, err := t.notify, t.err
		t.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("timed out after %s waiting for %s (%s)", timeout, what, progress)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitConsumed waits until n tracked Deployments carry reroll's consumed
// annotation, i.e. reroll adopted them.
func (t *tracker) waitConsumed(ctx context.Context, n int, timeout time.Duration) error {
	return t.wait(ctx, timeout, fmt.Sprintf("%d Deployments to be adopted", n), func(deps map[string]*deployState) (bool, string) {
		got := countAdopted(deps)
		return got >= n, fmt.Sprintf("%d adopted", got)
	})
}

// adopted returns how many tracked Deployments carry reroll's consumed
// annotation now.
func (t *tracker) adopted() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return countAdopted(t.deps)
}

// countAdopted counts the Deployments that carry reroll's consumed
// annotation.
func countAdopted(deps map[string]*deployState) int {
	got := 0
	for _, s := range deps {
		if s.consumed {
			got++
		}
	}
	return got
}

// waitChanged waits until every Deployment in keys has more template
// changes than in before, and returns the latest change time among them.
func (t *tracker) waitChanged(ctx context.Context, keys []string, before map[string]int, timeout time.Duration) (time.Time, error) {
	var latest time.Time
	err := t.wait(ctx, timeout, fmt.Sprintf("%d Deployments to roll", len(keys)), func(deps map[string]*deployState) (bool, string) {
		done := 0
		latest = time.Time{}
		for _, k := range keys {
			if s, ok := deps[k]; ok && s.changes > before[k] {
				done++
				if s.changedAt.After(latest) {
					latest = s.changedAt
				}
			}
		}
		return done == len(keys), fmt.Sprintf("%d of %d rolled", done, len(keys))
	})
	return latest, err
}

// counts returns the template change count of every tracked Deployment.
func (t *tracker) counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.deps))
	for k, s := range t.deps {
		out[k] = s.changes
	}
	return out
}

// generations returns the metadata.generation of every tracked Deployment.
func (t *tracker) generations() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.deps))
	for k, s := range t.deps {
		out[k] = s.generation
	}
	return out
}

// state returns a copy of what the tracker knows of one Deployment.
func (t *tracker) state(key string) (deployState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.deps[key]
	if !ok {
		return deployState{}, false
	}
	return *s, true
}

// rollDiff compares change counts before and after a phase: how many
// Deployments changed, how many changed more than once, and which changed.
func rollDiff(before, after map[string]int) (rolled, multi int, keys []string) {
	for k, n := range after {
		switch d := n - before[k]; {
		case d > 1:
			multi++
			fallthrough
		case d == 1:
			rolled++
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return rolled, multi, keys
}

// rollTimes returns when each Deployment of keys that changed since before
// last changed.
func (t *tracker) rollTimes(keys []string, before map[string]int) []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var times []time.Time
	for _, k := range keys {
		if s, ok := t.deps[k]; ok && s.changes > before[k] {
			times = append(times, s.changedAt)
		}
	}
	return times
}

// changeSpan returns the earliest and latest last-change times among keys.
func (t *tracker) changeSpan(keys []string) (first, last time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		s, ok := t.deps[k]
		if !ok || s.changedAt.IsZero() {
			continue
		}
		if first.IsZero() || s.changedAt.Before(first) {
			first = s.changedAt
		}
		if s.changedAt.After(last) {
			last = s.changedAt
		}
	}
	return first, last
}
