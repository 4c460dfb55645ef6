package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// scaleSharedNamespace holds the ConfigMap "shared" and the
	// Deployments that consume it, each with its own Secret.
	scaleSharedNamespace = "bench-scale-shared"
	// scaleEarlyNamespace holds the ConfigMap "early" and its consumers,
	// which the bench changes while reroll is still adopting.
	scaleEarlyNamespace = "bench-scale-early"
	// scaleEarlyConsumers is how many Deployments consume "early", on top
	// of the scaled count and at every scale.
	scaleEarlyConsumers = 10
	// scaleObjectBytes is the value data of each seeded ConfigMap and
	// Secret.
	scaleObjectBytes = 1024
	// scaleSeedWorkers, scaleSeedQPS and scaleSeedBurst are how the bench
	// seeds: many requests in flight and a client limit the server never
	// reaches, so that seeding 60,000 objects is bound by the control
	// plane alone.
	scaleSeedWorkers = 64
	scaleSeedQPS     = 5000
	scaleSeedBurst   = 5000
	// scaleProgressEvery is how many seeded objects make a progress line.
	scaleProgressEvery = 5000
	// rerollDefaultQPS is reroll's default --kube-api-qps, which the
	// scenario runs with and its fan-out budget assumes.
	rerollDefaultQPS = 100
	// rerollDefaultDebounce is reroll's default --debounce.
	rerollDefaultDebounce = time.Second
)

// scaleLayout is what the scale scenario seeds. ConfigMap i lives in
// namespace i % namespaces. The first shared Secrets live in
// scaleSharedNamespace, one per Deployment there; Secret shared+j lives in
// namespace j % namespaces, beside ConfigMap j. Deployment j < own consumes
// ConfigMap j (envFrom) and Secret shared+j (volume); Deployment own+k, in
// scaleSharedNamespace, consumes "shared" (envFrom) and Secret k (volume).
type scaleLayout struct {
	namespaces, configMaps, secrets int
	// deployments counts the opted-in Deployments, shared included, not
	// the scaleEarlyConsumers.
	deployments int
	// shared is how many of the deployments consume "shared".
	shared int
}

// newScaleLayout returns the scaled counts: at scale 1.0, 2,000
// namespaces, 25,000 ConfigMaps, 25,000 Secrets and 10,000 Deployments, of
// which 1,000 consume "shared". The minima keep every kind of object and
// at least one Deployment of each sort.
func newScaleLayout(e *env) scaleLayout {
	l := scaleLayout{
		namespaces: e.scaled(2000, 1),
		configMaps: e.scaled(25000, 1),
		secrets:    e.scaled(25000, 2),
	}
	l.shared = min(e.scaled(1000, 1), l.secrets-1)
	// Every Deployment needs a Secret of its own, and every one outside
	// the shared namespace a ConfigMap of its own.
	l.deployments = min(e.scaled(10000, l.shared+1), l.secrets, l.configMaps+l.shared)
	return l
}

// own returns how many Deployments consume a ConfigMap of their own.
func (l scaleLayout) own() int { return l.deployments - l.shared }

// total returns how many opted-in Deployments reroll adopts.
func (l scaleLayout) total() int { return l.deployments + scaleEarlyConsumers }

// namespace returns the name of namespace i.
func (l scaleLayout) namespace(i int) string { return fmt.Sprintf("bench-scale-%04d", i) }

// configMap returns ConfigMap i: 1 KiB of random text in one or two keys.
func (l scaleLayout) configMap(i int) *corev1.ConfigMap {
	rng := newRand(uint64(i) << 1)
	data := map[string]string{}
	for k, n := range splitSize(rand.New(rng), scaleObjectBytes, 1+i%2) {
		data[fmt.Sprintf("KEY_%d", k)] = randomText(rng, n)
	}
	return newConfigMap(l.namespace(i%l.namespaces), scaleConfigMapName(i), data)
}

// secret returns Secret i: 1 KiB of random bytes in one or two keys.
func (l scaleLayout) secret(i int) *corev1.Secret {
	rng := newRand(uint64(i)<<1 | 1)
	data := map[string][]byte{}
	for k, n := range splitSize(rand.New(rng), scaleObjectBytes, 1+i%2) {
		data[fmt.Sprintf("key-%d", k)] = randomBytes(rng, n)
	}
	ns := scaleSharedNamespace
	if i >= l.shared {
		ns = l.namespace((i - l.shared) % l.namespaces)
	}
	return newSecret(ns, scaleSecretName(i), data)
}

// deployment returns Deployment j of the layout, or, for j past them, one
// of the consumers of "early".
func (l scaleLayout) deployment(j int, scenario string) *appsv1.Deployment {
	name := fmt.Sprintf("app-%05d", j)
	switch {
	case j < l.own():
		return newDeployment(l.namespace(j%l.namespaces), name, scenario, true,
			consumption{envFromConfigMap: scaleConfigMapName(j), volumeSecret: scaleSecretName(l.shared + j)})
	case j < l.deployments:
		return newDeployment(scaleSharedNamespace, name, scenario, true,
			consumption{envFromConfigMap: "shared", volumeSecret: scaleSecretName(j - l.own())})
	}
	return newDeployment(scaleEarlyNamespace, earlyName(j-l.deployments), scenario, true,
		consumption{envFromConfigMap: "early"})
}

// scaleConfigMapName returns the name of ConfigMap i.
func scaleConfigMapName(i int) string { return fmt.Sprintf("cm-%05d", i) }

// scaleSecretName returns the name of Secret i.
func scaleSecretName(i int) string { return fmt.Sprintf("secret-%05d", i) }

// earlyName returns the name of consumer k of "early".
func earlyName(k int) string { return fmt.Sprintf("early-%02d", k) }

// sharedKeys returns the tracker keys of the consumers of "shared".
func (l scaleLayout) sharedKeys() []string {
	keys := make([]string, 0, l.shared)
	for j := l.own(); j < l.deployments; j++ {
		keys = append(keys, key(scaleSharedNamespace, fmt.Sprintf("app-%05d", j)))
	}
	return keys
}

// earlyKeys returns the tracker keys of the consumers of "early".
func earlyKeys() []string {
	keys := make([]string, scaleEarlyConsumers)
	for k := range keys {
		keys[k] = key(scaleEarlyNamespace, earlyName(k))
	}
	return keys
}

// params returns the counts as the result's Params.
func (l scaleLayout) params() map[string]any {
	return map[string]any{
		"namespaces": l.namespaces, "configMaps": l.configMaps, "secrets": l.secrets,
		"deployments": l.deployments, "sharedConsumers": l.shared, "earlyConsumers": scaleEarlyConsumers,
		"objectValueBytes": scaleObjectBytes, "seedWorkers": scaleSeedWorkers,
		"kubeAPIQPS": rerollDefaultQPS,
	}
}

// runScale measures reroll on a large cluster at its default flags: 2,000
// namespaces, 25,000 ConfigMaps and 25,000 Secrets of 1 KiB each, and
// 10,000 opted-in Deployments, 1,000 of which share one ConfigMap. It
// times start-up and the adoption of every Deployment, changes a ConfigMap
// consumed by 10 more Deployments as soon as /readyz passes (long before
// reroll has adopted them), measures how fast those roll, and then fans one
// change out to the 1,000 sharing Deployments.
func runScale(ctx context.Context, e *env, res *scenarioResult) error {
	l := newScaleLayout(e)
	res.Params = l.params()
	began := time.Now()
	if err := e.seedScale(ctx, l); err != nil {
		return err
	}
	e.recordSeeding(res, time.Since(began))
	tr, err := e.startTracker(ctx, "", labelScenario+"="+e.scenario)
	if err != nil {
		return err
	}
	r, err := e.startReroll(ctx, "main")
	if err != nil {
		return err
	}
	e.prof.startCPU(r, "main", maxCPUProfile)
	cpu0 := e.takeCPU(r)
	before, err := e.changeDuringAdoption(ctx, res, tr, r, l.total())
	if err != nil {
		return err
	}
	if err := e.recordAdoption(ctx, res, tr, r, l.total(), before, cpu0); err != nil {
		return err
	}
	base, err := e.fanoutRound(ctx, res, tr, r, scaleSharedNamespace, rerollDefaultQPS, l.sharedKeys(), "")
	if err != nil {
		return err
	}
	if err := e.recordBake(ctx, res, r, base, 5*time.Minute); err != nil {
		return err
	}
	hwm, rss, err := r.memory()
	if err != nil {
		return err
	}
	res.add("peak RSS (VmHWM) at end", mib(hwm), "MiB")
	res.add("RSS (VmRSS) at end", mib(rss), "MiB")
	e.prof.finish(ctx, r, "main")
	noteScale(res, l)
	return nil
}

// noteScale explains the scenario's setup in the result.
func noteScale(res *scenarioResult, l scaleLayout) {
	res.note("scale: %d ConfigMaps and %d Secrets of %d value bytes each (one or two keys) spread over %d namespaces; %d opted-in Deployments each consume their own ConfigMap (envFrom) and Secret (volume) in their namespace",
		l.configMaps, l.secrets, scaleObjectBytes, l.namespaces, l.own())
	res.note("scale: %d more Deployments in %s consume the ConfigMap \"shared\" (envFrom) and a Secret of their own (volume); the fan-out figures time one change of \"shared\" after adoption",
		l.shared, scaleSharedNamespace)
	res.note("scale: %d Deployments in %s, extra to the %d, consume the ConfigMap \"early\", which changes as soon as /readyz passes, while reroll is adopting; they must roll once each, ahead of the adoptions queued",
		scaleEarlyConsumers, scaleEarlyNamespace, l.deployments)
	res.note("scale: reroll runs with its default flags (--kube-api-qps=%d, --debounce=%s, --workers=8, --bake-time=30s) but for --controller-arg; kube-controller-manager adds a kube-root-ca.crt ConfigMap to every namespace, which reroll caches too",
		rerollDefaultQPS, rerollDefaultDebounce)
	res.note("scale: after the fan-out, the bake figures follow reroll's pod watches (one per namespace with a workload whose bake is not over) until none is left; the Deployments have no replicas, so the watches list no pod")
}

// scaleSeeder creates objects through a client of its own, with many
// requests in flight, and logs progress every scaleProgressEvery objects.
type scaleSeeder struct {
	client  kubernetes.Interface
	log     *logger
	created atomic.Int64
}

// each runs create for every i in [0, n) on scaleSeedWorkers goroutines,
// counting the objects created.
func (s *scaleSeeder) each(ctx context.Context, n int, what string, create func(ctx context.Context, i int) error) error {
	err := forEach(ctx, n, scaleSeedWorkers, func(ctx context.Context, i int) error {
		if err := create(ctx, i); err != nil {
			return err
		}
		if c := s.created.Add(1); c%scaleProgressEvery == 0 {
			s.log.printf("seeded %d objects", c)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seeding %s: %w", what, err)
	}
	return nil
}

// seedScale creates the namespaces, then the ConfigMaps and Secrets, then
// the Deployments of the layout, with "shared", "early" and their
// namespaces.
func (e *env) seedScale(ctx context.Context, l scaleLayout) error {
	client, err := newClient(e.cluster.config, scaleSeedQPS, scaleSeedBurst)
	if err != nil {
		return err
	}
	s := &scaleSeeder{client: client, log: e.log}
	e.log.printf("seeding %d namespaces, %d ConfigMaps, %d Secrets and %d Deployments on %d workers",
		l.namespaces+2, l.configMaps+2, l.secrets, l.total(), scaleSeedWorkers)
	namespaces := []string{scaleSharedNamespace, scaleEarlyNamespace}
	for i := range l.namespaces {
		namespaces = append(namespaces, l.namespace(i))
	}
	if err := s.each(ctx, len(namespaces), "namespaces", func(ctx context.Context, i int) error {
		_, err := client.CoreV1().Namespaces().Create(ctx, newNamespace(namespaces[i]), metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := s.each(ctx, l.configMaps+l.secrets+2, "config", func(ctx context.Context, i int) error {
		return s.createConfig(ctx, l, i)
	}); err != nil {
		return err
	}
	return s.each(ctx, l.total(), "Deployments", func(ctx context.Context, j int) error {
		d := l.deployment(j, e.scenario)
		_, err := client.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
}

// createConfig creates config object i: the ConfigMaps, then the Secrets,
// then "shared" and "early".
func (s *scaleSeeder) createConfig(ctx context.Context, l scaleLayout, i int) error {
	var cm *corev1.ConfigMap
	switch {
	case i < l.configMaps:
		cm = l.configMap(i)
	case i < l.configMaps+l.secrets:
		sec := l.secret(i - l.configMaps)
		_, err := s.client.CoreV1().Secrets(sec.Namespace).Create(ctx, sec, metav1.CreateOptions{})
		return err
	case i == l.configMaps+l.secrets:
		cm = newConfigMap(scaleSharedNamespace, "shared", map[string]string{"value": "0"})
	default:
		cm = newConfigMap(scaleEarlyNamespace, "early", map[string]string{"value": "0"})
	}
	_, err := s.client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{})
	return err
}

// changeDuringAdoption waits for /readyz, changes "early" at once, while
// reroll has just begun adopting the total Deployments, and records how
// long until its consumers rolled and how far adoption had got. It returns
// the roll counts from before the change.
func (e *env) changeDuringAdoption(ctx context.Context, res *scenarioResult, tr *tracker, r *reroll, total int) (map[string]int, error) {
	ready, err := r.waitReady(ctx, readyTimeout)
	if err != nil {
		return nil, err
	}
	keys := earlyKeys()
	before := tr.counts()
	adoptedAtChange, earlyAdopted := tr.adopted(), adoptedOf(tr, keys)
	// Timed from before the request, as in fanoutRound.
	changed := time.Now()
	if err := e.patchConfigMapValue(ctx, scaleEarlyNamespace, "early", "1"); err != nil {
		return nil, err
	}
	e.log.printf("reroll ready after %.2fs; changed \"early\" with %d of %d Deployments adopted", ready.Seconds(), adoptedAtChange, total)
	res.add("start to /readyz 200", ready.Seconds(), "s")
	if hwm, _, err := r.memory(); err == nil {
		res.add("peak RSS (VmHWM) at /readyz", mib(hwm), "MiB")
	}
	// Bounded as adoption is: were the change not synced first, its
	// consumers would roll when their adoption came, which is worth a
	// figure too.
	last, err := tr.waitChanged(ctx, keys, before, adoptTimeout(total))
	if err != nil {
		return nil, err
	}
	adoptedAtRoll := tr.adopted()
	res.addTarget(fmt.Sprintf("change during adoption to all %d rolled", len(keys)), last.Sub(changed).Seconds(), "s",
		target{Op: "<=", Value: (rerollDefaultDebounce + 2*time.Second).Seconds(), Note: "debounce + 2 s"})
	res.add("  Deployments adopted at the change", float64(adoptedAtChange), "")
	res.add("  Deployments adopted when those rolled", float64(adoptedAtRoll), "")
	res.add(fmt.Sprintf("  of the %d, adopted before the change", len(keys)), float64(earlyAdopted), "")
	if earlyAdopted > 0 {
		res.note("scale: %d of the consumers of \"early\" were adopted before it changed, so they rolled as adopted Deployments do, not from the baseline kept for the change", earlyAdopted)
	}
	return before, nil
}

// adoptedOf counts the Deployments in keys that reroll has adopted.
func adoptedOf(tr *tracker, keys []string) int {
	n := 0
	for _, k := range keys {
		if s, ok := tr.state(k); ok && s.consumed {
			n++
		}
	}
	return n
}

// recordAdoption waits until reroll has adopted all n Deployments and its
// queue has drained, and records the time, memory, CPU and API requests
// that took, and the rolls since before (only the consumers of "early"
// should have rolled, once each).
func (e *env) recordAdoption(ctx context.Context, res *scenarioResult, tr *tracker, r *reroll, n int, before map[string]int, cpu0 cpuSnapshot) error {
	if err := tr.waitConsumed(ctx, n, adoptTimeout(n)); err != nil {
		return err
	}
	adopted := time.Since(r.started)
	cpu1 := e.takeCPU(r)
	e.log.printf("reroll adopted %d Deployments after %.2fs", n, adopted.Seconds())
	res.add(fmt.Sprintf("start to all %d adopted", n), adopted.Seconds(), "s")
	_, m, err := r.waitQuiet(ctx, quietWindow, adoptTimeout(n))
	if err != nil {
		return err
	}
	if err := addMemory(res, r, m, "after adoption"); err != nil {
		return err
	}
	rolled, multi, _ := rollDiff(before, tr.counts())
	res.addTarget("during adoption: Deployments rolled", float64(rolled), "", target{Op: "==", Value: scaleEarlyConsumers})
	res.addTarget("during adoption: rolled more than once", float64(multi), "", target{Op: "==", Value: 0})
	addRequests(res, m, n)
	res.add("sync errors, start to adopted", m.sum("reroll_sync_errors_total"), "")
	noteSyncErrors(res, e.scenario+": start to adopted", nil, m)
	addCPU(res, "start to all adopted", cpu0, cpu1)
	return nil
}

// addRequests records the API requests reroll sent from its start until
// the scrape m, by HTTP method. client-go counts gets, lists and watches
// alike as GET.
func addRequests(res *scenarioResult, m metricSet, n int) {
	by := m.byLabel("rest_client_requests_total", "method")
	other := 0.0
	for method, v := range by {
		if !slices.Contains([]string{"PATCH", "POST", "GET"}, method) {
			other += v
		}
	}
	// One more than the Deployments: at its start reroll publishes its
	// decision settings on its hash-key Secret (reroll.dev/settings), which
	// it creates without them.
	res.addTarget("PATCH requests by reroll, start to adopted", by["PATCH"], "",
		target{Op: "==", Value: float64(n + 1), Note: "one per Deployment, one publishing reroll's settings"})
	res.add("  of which 409 Conflict", m.sum("rest_client_requests_total", "method", "PATCH", "code", "409"), "")
	res.add("POST requests by reroll, start to adopted", by["POST"], "")
	res.add("GET requests by reroll (get, list, watch), start to adopted", by["GET"], "")
	res.add("other requests by reroll, start to adopted", other, "")
}
