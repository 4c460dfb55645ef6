package main

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

const (
	// latencyNamespace holds the latency scenario's objects.
	latencyNamespace = "bench-latency"
	// labelRole tells the ConfigMaps reroll watches ("reroll") from those
	// the floor client watches ("floor").
	labelRole = "bench.reroll.dev/role"
)

// latencyConfigMaps keeps the latest version of each ConfigMap the latency
// scenario updates, so that every Update carries the right resourceVersion.
// Updates are sequential, so it needs no lock.
type latencyConfigMaps map[string]*corev1.ConfigMap

// runLatency measures the time from a ConfigMap Update's response until a
// watch sees the consuming Deployment's pod template change, for reroll
// with --debounce=0 and, interleaved, for a floor: a minimal client in the
// bench that watches ConfigMaps and sends the same kind of patch (a
// strategic merge patch of a metadata and a pod template annotation) for
// Deployments reroll does not watch (not opted in). Then it measures reroll
// with the default 1s debounce.
func runLatency(ctx context.Context, e *env, res *scenarioResult) error {
	n := e.scaled(20, 3)
	updates := e.scaled(200, 20)
	debounced := e.scaled(20, 5)
	res.Params = map[string]any{"deployments": n, "floorDeployments": n, "updates": updates, "debouncedUpdates": debounced}
	client := e.cluster.client
	ns := latencyNamespace
	if err := e.createNamespaces(ctx, []string{ns}); err != nil {
		return err
	}
	cms := latencyConfigMaps{}
	for _, role := range []string{"r", "f"} {
		for i := range n {
			name := fmt.Sprintf("%s-%02d", role, i)
			cm := newConfigMap(ns, name, map[string]string{"value": randomText(newRand(uint64(i)), 32)})
			cm.Labels = map[string]string{labelRole: map[string]string{"r": "reroll", "f": "floor"}[role]}
			created, err := client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			cms[name] = created
		}
	}
	if err := e.createDeployments(ctx, 2*n, func(i int) *appsv1.Deployment {
		role := []string{"r", "f"}[i/n]
		name := fmt.Sprintf("%s-%02d", role, i%n)
		return newDeployment(ns, name, e.scenario, role == "r", consumption{keyConfigMap: name, key: "value"})
	}); err != nil {
		return err
	}
	tr, err := e.startTracker(ctx, ns, labelScenario+"="+e.scenario)
	if err != nil {
		return err
	}
	if err := e.startFloor(ctx, ns); err != nil {
		return err
	}

	r, _, err := e.startAndAdopt(ctx, tr, n, "debounce-0", "--debounce=0")
	if err != nil {
		return err
	}
	e.prof.startCPU(r, "debounce-0", maxCPUProfile)
	var rerollLat, floorLat []float64
	rng := newRand(42)
	for i := range updates {
		for _, role := range []string{"r", "f"} {
			d, err := e.updateAndWait(ctx, tr, cms, fmt.Sprintf("%s-%02d", role, i%n), randomText(rng, 32))
			if err != nil {
				return err
			}
			if role == "r" {
				rerollLat = append(rerollLat, ms(d))
			} else {
				floorLat = append(floorLat, ms(d))
			}
		}
		if (i+1)%50 == 0 {
			e.log.printf("%d of %d updates", i+1, updates)
		}
	}
	floor50, floor99 := percentile(floorLat, 50), percentile(floorLat, 99)
	res.addTarget("reroll p50 (--debounce=0)", percentile(rerollLat, 50), "ms", target{Op: "<=", Value: 1.5 * floor50, Note: "1.5 × floor p50"})
	res.add("reroll p90 (--debounce=0)", percentile(rerollLat, 90), "ms")
	res.addTarget("reroll p99 (--debounce=0)", percentile(rerollLat, 99), "ms", target{Op: "<=", Value: 3 * floor99, Note: "3 × floor p99"})
	res.add("reroll max (--debounce=0)", percentile(rerollLat, 100), "ms")
	res.add("floor p50", floor50, "ms")
	res.add("floor p90", percentile(floorLat, 90), "ms")
	res.add("floor p99", floor99, "ms")
	res.add("floor max", percentile(floorLat, 100), "ms")
	res.addSeries(latencySeries("reroll latency (--debounce=0)", rerollLat))
	res.addSeries(latencySeries("floor latency", floorLat))
	m, err := r.metrics(ctx)
	if err != nil {
		return err
	}
	res.add("sync errors (--debounce=0)", m.sum("reroll_sync_errors_total"), "")
	if hwm, _, err := r.memory(); err == nil {
		res.add(fmt.Sprintf("peak RSS (VmHWM), %d Deployments", 2*n), mib(hwm), "MiB")
	}
	noteSyncErrors(res, "latency", nil, m)
	e.prof.finish(ctx, r, "debounce-0")
	r.stop()

	// The default debounce: every roll waits 1s for more changes.
	r, _, err = e.startAndAdopt(ctx, tr, n, "debounce-1s")
	if err != nil {
		return err
	}
	var debouncedLat []float64
	for i := range debounced {
		d, err := e.updateAndWait(ctx, tr, cms, fmt.Sprintf("r-%02d", i%n), randomText(rng, 32))
		if err != nil {
			return err
		}
		debouncedLat = append(debouncedLat, ms(d))
	}
	res.add("reroll p50 (default --debounce=1s)", percentile(debouncedLat, 50), "ms")
	res.add("reroll max (default --debounce=1s)", percentile(debouncedLat, 100), "ms")
	if m, err = r.metrics(ctx); err != nil {
		return err
	}
	res.add("sync errors (default --debounce=1s)", m.sum("reroll_sync_errors_total"), "")
	res.note("latency: from the ConfigMap Update's response to the bench's Deployment watch seeing the pod template annotation change; reroll and floor updates interleaved, one at a time")
	return nil
}

// updateAndWait updates the "value" of ConfigMap name, then waits until the
// Deployment of the same name rolls, and returns the time from the Update's
// response to the watch event of the roll.
func (e *env) updateAndWait(ctx context.Context, tr *tracker, cms latencyConfigMaps, name, value string) (time.Duration, error) {
	k := key(latencyNamespace, name)
	s, ok := tr.state(k)
	if !ok {
		return 0, fmt.Errorf("no Deployment %s in the tracker", k)
	}
	cm := cms[name].DeepCopy()
	cm.Data["value"] = value
	updated, err := e.cluster.client.CoreV1().ConfigMaps(latencyNamespace).Update(ctx, cm, metav1.UpdateOptions{FieldManager: benchFieldManager})
	if err != nil {
		return 0, fmt.Errorf("updating ConfigMap %s: %w", name, err)
	}
	answered := time.Now()
	cms[name] = updated
	rolled, err := tr.waitChanged(ctx, []string{k}, map[string]int{k: s.changes}, rollTimeout)
	if err != nil {
		return 0, err
	}
	return rolled.Sub(answered), nil
}

// startFloor starts the floor client: it watches the ConfigMaps labelled as
// the floor's in namespace and, on every change, patches the Deployment of
// the same name the way reroll does (one strategic merge patch of a
// metadata and a pod template annotation), with its own client, rate
// limited like reroll's by default (100 QPS, burst 200), speaking JSON like
// reroll. It stops when the scenario ends.
func (e *env) startFloor(ctx context.Context, namespace string) error {
	cfg := *e.cluster.config
	cfg.QPS, cfg.Burst = 100, 200
	client, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return err
	}
	selector := labelRole + "=floor"
	list, err := client.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := watchtools.NewRetryWatcherWithContext(wctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector = selector
			return client.CoreV1().ConfigMaps(namespace).Watch(ctx, opts)
		},
	})
	if err != nil {
		cancel()
		return err
	}
	e.onCleanup(func() {
		cancel()
		w.Stop()
		<-w.Done()
	})
	go func() {
		for ev := range w.ResultChan() {
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if ev.Type != watch.Modified || !ok {
				continue
			}
			body := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}},"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`,
				annotationFloorHash, cm.ResourceVersion, annotationFloorHash, cm.ResourceVersion)
			_, err := client.AppsV1().Deployments(namespace).Patch(wctx, cm.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{FieldManager: "floor"})
			if err != nil && wctx.Err() == nil {
				e.log.printf("floor: patching %s: %v", cm.Name, err)
			}
		}
	}()
	return nil
}
