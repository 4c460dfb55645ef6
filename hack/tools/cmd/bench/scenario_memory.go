package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// memoryData is the seeded config data of the memory scenario: how many
// objects, in how many namespaces, of which sizes.
type memoryData struct {
	namespaces, secrets, configMaps int
	// sizes holds the value bytes of every object: Secrets first, then
	// ConfigMaps.
	sizes []int
}

// memoryNamespace returns the name of namespace i.
func memoryNamespace(i int) string { return fmt.Sprintf("bench-mem-%03d", i) }

// secretName returns the name of Secret i (in namespace i % namespaces).
func secretName(i int) string { return fmt.Sprintf("secret-%05d", i) }

// configMapName returns the name of ConfigMap i (in namespace i % namespaces).
func configMapName(i int) string { return fmt.Sprintf("cm-%05d", i) }

// newMemoryData spreads totalBytes over the objects with sizes drawn
// uniformly between a quarter and 1.75 times the mean.
func newMemoryData(namespaces, secrets, configMaps int, totalBytes int64) memoryData {
	d := memoryData{namespaces: namespaces, secrets: secrets, configMaps: configMaps}
	rng := rand.New(rand.NewPCG(1, 2))
	weights := make([]float64, secrets+configMaps)
	sum := 0.0
	for i := range weights {
		weights[i] = 0.25 + 1.5*rng.Float64()
		sum += weights[i]
	}
	d.sizes = make([]int, len(weights))
	for i, w := range weights {
		d.sizes[i] = max(1, int(math.Round(float64(totalBytes)*w/sum)))
	}
	return d
}

// secretData returns fresh random data for Secret i: 1 to 4 keys of raw
// random bytes adding up to its size. version makes a change.
func (d memoryData) secretData(i, version int) map[string][]byte {
	rng := newRand(uint64(i)<<16 | uint64(version))
	parts := splitSize(rand.New(rng), d.sizes[i], 1+i%4)
	data := make(map[string][]byte, len(parts))
	for k, n := range parts {
		data[fmt.Sprintf("key-%d", k)] = randomBytes(rng, n)
	}
	return data
}

// configMapData returns fresh random text for ConfigMap i: 1 to 4 keys
// adding up to its size. version makes a change.
func (d memoryData) configMapData(i, version int) map[string]string {
	rng := newRand(uint64(d.secrets+i)<<16 | uint64(version))
	parts := splitSize(rand.New(rng), d.sizes[d.secrets+i], 1+i%4)
	data := make(map[string]string, len(parts))
	for k, n := range parts {
		data[fmt.Sprintf("KEY_%d", k)] = randomText(rng, n)
	}
	return data
}

// totalBytes returns the value bytes of every object.
func (d memoryData) totalBytes() int64 {
	var t int64
	for _, s := range d.sizes {
		t += int64(s)
	}
	return t
}

// firstBytes returns the value bytes of the first n Secrets and the first n
// ConfigMaps.
func (d memoryData) firstBytes(n int) int64 {
	var t int64
	for i := range n {
		t += int64(d.sizes[i] + d.sizes[d.secrets+i])
	}
	return t
}

// memoryWorkloads are the memory scenario's Deployments: Deployment i, of
// n, lives in namespace i % namespaces.
type memoryWorkloads struct {
	namespaces, n int
	deployment    func(i int) *appsv1.Deployment
}

// keysIn returns the tracker keys of the Deployments in namespace ns, the
// ns-th namespace.
func (w memoryWorkloads) keysIn(ns int) []string {
	var keys []string
	for i := ns; i < w.n; i += w.namespaces {
		d := w.deployment(i)
		keys = append(keys, key(d.Namespace, d.Name))
	}
	return keys
}

// memoryVariant is what a variant of the memory scenario adds to it; the
// zero value is the memory scenario itself.
type memoryVariant struct {
	// deployment changes each Deployment before it is created.
	deployment func(d *appsv1.Deployment)
	// seed seeds more once the Deployments exist, before reroll starts.
	seed func(ctx context.Context, e *env, res *scenarioResult, w memoryWorkloads) error
	// args are reroll's extra flags.
	args []string
	// after measures more once the memory scenario's figures are taken.
	after func(ctx context.Context, e *env, res *scenarioResult, r *reroll, tr *tracker, w memoryWorkloads) error
	// selected, when above 0, is the share of the ConfigMaps and Secrets
	// labelled selectedLabel: ConfigMap and Secret i for i below as many
	// Deployments, whose number it lowers to half that share of the
	// objects, so that each consumes only labelled objects.
	selected float64
}

// labels returns the labels of ConfigMap and Secret i when nDeploy
// Deployments consume them.
func (v memoryVariant) labels(nDeploy int) func(i int) map[string]string {
	return func(i int) map[string]string {
		if v.selected > 0 && i < nDeploy {
			return map[string]string{selectedLabel: "true"}
		}
		return nil
	}
}

// seedMemoryConfig creates the Secrets and then the ConfigMaps of data,
// object i of each with labels(i).
func (e *env) seedMemoryConfig(ctx context.Context, data memoryData, labels func(i int) map[string]string) error {
	e.log.printf("seeding %d Secrets and %d ConfigMaps with %.1f MB of random data in %d namespaces", data.secrets, data.configMaps, float64(data.totalBytes())/1e6, data.namespaces)
	client := e.cluster.client
	var done atomic.Int64
	err := forEach(ctx, data.secrets+data.configMaps, seedWorkers, func(ctx context.Context, i int) error {
		if n := done.Add(1); n%1000 == 0 {
			e.log.printf("seeded %d objects", n)
		}
		if i < data.secrets {
			s := newSecret(memoryNamespace(i%data.namespaces), secretName(i), data.secretData(i, 0))
			s.Labels = labels(i)
			_, err := client.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
			return err
		}
		j := i - data.secrets
		cm := newConfigMap(memoryNamespace(j%data.namespaces), configMapName(j), data.configMapData(j, 0))
		cm.Labels = labels(j)
		_, err := client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("seeding config: %w", err)
	}
	return nil
}

// runMemory measures reroll's memory with a lot of config data: 5,900
// Secrets and 3,200 ConfigMaps holding ~213 MB of random data in 190
// namespaces, and 1,000 opted-in Deployments each consuming one ConfigMap
// (envFrom) and one Secret (volume), none shared. reroll starts after the
// seeding; then 100 consumed objects change and the 100 Deployments that
// consume them must roll.
func runMemory(ctx context.Context, e *env, res *scenarioResult) error {
	return runMemoryVariant(ctx, e, res, memoryVariant{})
}

// memoryLayout is how many of each object a run of the memory scenario
// has, and their data.
type memoryLayout struct {
	namespaces, secrets, configMaps, deployments, changes int
	data                                                  memoryData
}

// newMemoryLayout returns the memory scenario's layout at the run's scale,
// with the fewer Deployments a variant with selected objects has.
func newMemoryLayout(e *env, v memoryVariant) memoryLayout {
	l := memoryLayout{namespaces: e.scaled(190, 2), secrets: e.scaled(5900, 4), configMaps: e.scaled(3200, 4)}
	l.deployments = min(e.scaled(1000, 2), l.secrets, l.configMaps)
	if v.selected > 0 {
		l.deployments = min(l.deployments, max(2, int(math.Round(v.selected*float64(l.secrets+l.configMaps)/2))))
	}
	l.changes = min(e.scaled(100, 2), l.deployments)
	l.data = newMemoryData(l.namespaces, l.secrets, l.configMaps, int64(math.Round(213e6*e.opts.scale)))
	return l
}

// params returns the layout as a scenario's parameters.
func (l memoryLayout) params(v memoryVariant) map[string]any {
	p := map[string]any{
		"namespaces": l.namespaces, "secrets": l.secrets, "configMaps": l.configMaps, "deployments": l.deployments,
		"changes": l.changes, "dataBytes": l.data.totalBytes(),
	}
	if v.selected > 0 {
		p["selectedObjects"] = 2 * l.deployments
		p["selectedBytes"] = l.data.firstBytes(l.deployments)
	}
	return p
}

// workloads returns the layout's Deployments, as v changes them:
// Deployment i consumes ConfigMap i and Secret i, all three in namespace
// i % namespaces, as the objects are spread the same way.
func (l memoryLayout) workloads(scenario string, v memoryVariant) memoryWorkloads {
	return memoryWorkloads{namespaces: l.namespaces, n: l.deployments, deployment: func(i int) *appsv1.Deployment {
		d := newDeployment(memoryNamespace(i%l.namespaces), fmt.Sprintf("app-%04d", i), scenario, true,
			consumption{envFromConfigMap: configMapName(i), volumeSecret: secretName(i)})
		if v.deployment != nil {
			v.deployment(d)
		}
		return d
	}}
}

// runMemoryVariant runs the memory scenario (see runMemory) with what v
// adds to it: seed, start and adopt, change, then v's own measurements.
func runMemoryVariant(ctx context.Context, e *env, res *scenarioResult, v memoryVariant) error {
	l := newMemoryLayout(e, v)
	res.Params = l.params(v)
	w := l.workloads(e.scenario, v)
	if err := e.seedMemory(ctx, res, l, v, w); err != nil {
		return err
	}
	tr, err := e.startTracker(ctx, "", labelScenario+"="+e.scenario)
	if err != nil {
		return err
	}
	r, err := e.startMemory(ctx, res, l, tr, v.args)
	if err != nil {
		return err
	}
	if err := e.changeMemory(ctx, res, l, r, tr); err != nil {
		return err
	}
	if v.after != nil {
		if err := v.after(ctx, e, res, r, tr, w); err != nil {
			return err
		}
	}
	e.prof.finish(ctx, r, "main")
	return e.measurePlugin(ctx, res, l.deployments)
}

// seedMemory creates the layout's namespaces, ConfigMaps and Secrets and
// the Deployments w, then seeds what v adds, and records how long it took.
func (e *env) seedMemory(ctx context.Context, res *scenarioResult, l memoryLayout, v memoryVariant, w memoryWorkloads) error {
	began := time.Now()
	names := make([]string, l.namespaces)
	for i := range names {
		names[i] = memoryNamespace(i)
	}
	if err := e.createNamespaces(ctx, names); err != nil {
		return err
	}
	if err := e.seedMemoryConfig(ctx, l.data, v.labels(l.deployments)); err != nil {
		return err
	}
	if err := e.createDeployments(ctx, w.n, w.deployment); err != nil {
		return err
	}
	if v.seed != nil {
		if err := v.seed(ctx, e, res, w); err != nil {
			return err
		}
	}
	e.recordSeeding(res, time.Since(began))
	return nil
}

// startMemory starts reroll with args, records its start-up (time, peak
// RSS and CPU to /readyz, a change made then to its roll), waits until it
// adopted every Deployment and its queue drained, and records its memory
// then.
func (e *env) startMemory(ctx context.Context, res *scenarioResult, l memoryLayout, tr *tracker, args []string) (*reroll, error) {
	r, err := e.startReroll(ctx, "main", args...)
	if err != nil {
		return nil, err
	}
	e.prof.startCPU(r, "main", maxCPUProfile)
	ready, err := r.waitReady(ctx, readyTimeout)
	if err != nil {
		return nil, err
	}
	res.add("start to /readyz 200", ready.Seconds(), "s")
	if hwm, _, err := r.memory(); err == nil {
		res.add("peak RSS (VmHWM) at /readyz", mib(hwm), "MiB")
	}
	if cpu, err := r.cpu(); err == nil {
		res.add("CPU time, start to /readyz", cpu, "s")
	}
	last := l.deployments - 1
	if err := measureFirstRoll(ctx, e, res, r, tr, l.data, last, l.deployKey(last)); err != nil {
		return nil, err
	}
	if err := tr.waitConsumed(ctx, l.deployments, adoptTimeout(l.deployments)); err != nil {
		return nil, err
	}
	res.add(fmt.Sprintf("start to %d Deployments adopted", l.deployments), time.Since(r.started).Seconds(), "s")
	_, m, err := r.waitQuiet(ctx, quietWindow, adoptTimeout(l.deployments))
	if err != nil {
		return nil, err
	}
	return r, addMemory(res, r, m, "after sync")
}

// deployKey returns the tracker key of Deployment i.
func (l memoryLayout) deployKey(i int) string {
	return key(memoryNamespace(i%l.namespaces), fmt.Sprintf("app-%04d", i))
}

// changeMemory changes consumed objects, each consumed by exactly one
// Deployment (alternately the ConfigMap and the Secret of every k-th
// Deployment), waits until those Deployments rolled, and records how long
// that took, whether any rolled twice, and reroll's memory at the end.
func (e *env) changeMemory(ctx context.Context, res *scenarioResult, l memoryLayout, r *reroll, tr *tracker) error {
	before := tr.counts()
	keys := make([]string, l.changes)
	began := time.Now()
	err := forEach(ctx, l.changes, seedWorkers, func(ctx context.Context, k int) error {
		i := k * l.deployments / l.changes
		keys[k] = l.deployKey(i)
		return e.changeMemoryObject(ctx, l.data, i, k%2 == 0)
	})
	if err != nil {
		return fmt.Errorf("changing config: %w", err)
	}
	last, err := tr.waitChanged(ctx, keys, before, rollTimeout+time.Duration(l.changes)*100*time.Millisecond)
	if err != nil {
		return err
	}
	res.add(fmt.Sprintf("%d changes to %d rolled", l.changes, l.changes), last.Sub(began).Seconds(), "s")
	_, m, err := r.waitQuiet(ctx, quietWindow, time.Minute)
	if err != nil {
		return err
	}
	rolled, multi, _ := rollDiff(before, tr.counts())
	res.addTarget("Deployments rolled", float64(rolled), "", target{Op: "==", Value: float64(l.changes)})
	res.addTarget("Deployments rolled more than once", float64(multi), "", target{Op: "==", Value: 0})
	hwm, rss, err := r.memory()
	if err != nil {
		return err
	}
	res.addTarget("peak RSS (VmHWM) at end", mib(hwm), "MiB", target{Op: "<=", Value: 64})
	res.add("RSS (VmRSS) at end", mib(rss), "MiB")
	res.add("heap in use at end", mib(uint64(m.sum("go_memstats_heap_inuse_bytes"))), "MiB")
	res.add("sync errors", m.sum("reroll_sync_errors_total"), "")
	noteSyncErrors(res, "memory", nil, m)
	return nil
}

// changeMemoryObject gives ConfigMap i (or, without configMap, Secret i)
// its version 1 of data.
func (e *env) changeMemoryObject(ctx context.Context, data memoryData, i int, configMap bool) error {
	client := e.cluster.client
	ns := memoryNamespace(i % data.namespaces)
	if configMap {
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, configMapName(i), metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Data = data.configMapData(i, 1)
		_, err = client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: benchFieldManager})
		return err
	}
	s, err := client.CoreV1().Secrets(ns).Get(ctx, secretName(i), metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.Data = data.secretData(i, 1)
	_, err = client.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{FieldManager: benchFieldManager})
	return err
}

// measureFirstRoll changes ConfigMap i, consumed only by Deployment
// deployKey, as soon as reroll is ready, while it is still adopting, and
// records how long after reroll's start and after the change the
// Deployment rolled. reroll takes a change made before a consumer's
// adoption against the content it first saw, and syncs it ahead of the
// adoptions still queued.
func measureFirstRoll(ctx context.Context, e *env, res *scenarioResult, r *reroll, tr *tracker, data memoryData, i int, deployKey string) error {
	ns := memoryNamespace(i % data.namespaces)
	cm, err := e.cluster.client.CoreV1().ConfigMaps(ns).Get(ctx, configMapName(i), metav1.GetOptions{})
	if err != nil {
		return err
	}
	// Version 2: the later changes use version 1, so this one never
	// makes a later change a no-op.
	cm.Data = data.configMapData(i, 2)
	before := tr.counts()
	adopted := tr.adopted()
	changed := time.Now()
	if _, err := e.cluster.client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: benchFieldManager}); err != nil {
		return fmt.Errorf("changing ConfigMap %s/%s: %w", ns, cm.Name, err)
	}
	rolled, err := tr.waitChanged(ctx, []string{deployKey}, before, rollTimeout)
	if err != nil {
		return err
	}
	res.add("start to first roll (a change made at /readyz)", rolled.Sub(r.started).Seconds(), "s")
	res.addTarget("  change at /readyz to its roll", rolled.Sub(changed).Seconds(), "s",
		target{Op: "<=", Value: 3, Note: "debounce + 2 s, issue #15"})
	res.add("  Deployments adopted when the change was made", float64(adopted), "")
	res.add("  Deployments adopted when it rolled", float64(tr.adopted()), "")
	return nil
}

// measurePlugin runs `kubectl reroll status -A` once over the scenario's
// cluster, as a user would, and records its wall time, its peak RSS, and
// how many rows it printed (every opted-in Deployment, and reroll's).
func (e *env) measurePlugin(ctx context.Context, res *scenarioResult, nDeploy int) error {
	if e.opts.plugin == "" {
		res.note("memory: no --plugin given, so kubectl reroll status -A was not measured")
		return nil
	}
	cmd := exec.CommandContext(ctx, e.opts.plugin, "status", "-A", "-o", "json",
		"--kubeconfig="+e.cluster.info.Kubeconfig, "--controller-namespace=default")
	began := time.Now()
	out, err := cmd.Output()
	took := time.Since(began)
	if err != nil {
		return fmt.Errorf("kubectl reroll status -A: %w", err)
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(out, &rows); err != nil {
		return fmt.Errorf("kubectl reroll status -A printed no JSON list: %w", err)
	}
	res.addTarget("kubectl reroll status -A: wall time", took.Seconds(), "s", target{Op: "<=", Value: 3})
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.add("kubectl reroll status -A: peak RSS", float64(ru.Maxrss)/1024, "MiB")
	}
	res.addTarget("kubectl reroll status -A: rows", float64(len(rows)), "", target{Op: "==", Value: float64(nDeploy)})
	return nil
}
