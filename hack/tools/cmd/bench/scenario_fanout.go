package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const (
	// fanoutNamespace holds the fanout scenario's objects.
	fanoutNamespace = "bench-fanout"
	// fanoutQPS is reroll's client rate limit (and burst) in the fanout
	// scenario; the target is 1.2 × deployments / fanoutQPS seconds.
	fanoutQPS = 200
	// fanoutWorkers is reroll's --workers in the second fanout round.
	fanoutWorkers = 32
	// fanoutWaves is the reroll.dev/waves of the rounds with waves.
	fanoutWaves = "1,10%,100%"
	// fanoutPacing is the --max-rollouts-per-second of the paced rounds,
	// as in the storm scenario.
	fanoutPacing = 50
)

// fanoutPolicy is a round of the fanout scenario with reroll's rollout
// policies: waves on the ConfigMap, pacing as a flag, or both.
type fanoutPolicy struct {
	// label names reroll's process (its log file).
	label string
	// waves is the ConfigMap's reroll.dev/waves, or "" for none.
	waves string
	// pacing is reroll's --max-rollouts-per-second, or 0 for none.
	pacing int
}

// suffix is what the round's figure and series names end with.
func (p fanoutPolicy) suffix() string {
	var parts []string
	if p.waves != "" {
		parts = append(parts, "waves "+p.waves)
	}
	if p.pacing > 0 {
		parts = append(parts, fmt.Sprintf("--max-rollouts-per-second=%d", p.pacing))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// fanoutPolicies returns the policy rounds, in the order they run.
func fanoutPolicies() []fanoutPolicy {
	return []fanoutPolicy{
		{label: "waves", waves: fanoutWaves},
		{label: "paced", pacing: fanoutPacing},
		{label: "waves-paced", waves: fanoutWaves, pacing: fanoutPacing},
	}
}

// runFanout changes one ConfigMap consumed by 1,000 adopted Deployments and
// measures how long reroll, limited to 200 requests per second, takes to
// roll them all, whether any rolls twice, and how many PATCHes it sends.
// A second round does the same after restarting reroll with --workers=32,
// which tells the client rate limit from the number of PATCHes in flight.
// Three more rounds roll them with waves, with pacing, and with both (see
// fanoutPolicies). Every round records its rolls over time.
func runFanout(ctx context.Context, e *env, res *scenarioResult) error {
	n := e.scaled(1000, 10)
	res.Params = map[string]any{"deployments": n, "kubeAPIQPS": fanoutQPS, "kubeAPIBurst": fanoutQPS}
	ns := fanoutNamespace
	if err := e.createNamespaces(ctx, []string{ns}); err != nil {
		return err
	}
	if err := e.createConfigMaps(ctx, 1, func(int) *corev1.ConfigMap {
		return newConfigMap(ns, "shared", map[string]string{"value": randomText(newRand(7), 32)})
	}); err != nil {
		return err
	}
	names := make([]string, n)
	keys := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("d-%04d", i)
		keys[i] = key(ns, names[i])
	}
	if err := e.createDeployments(ctx, n, func(i int) *appsv1.Deployment {
		return newDeployment(ns, names[i], e.scenario, true, consumption{envFromConfigMap: "shared"})
	}); err != nil {
		return err
	}
	tr, err := e.startTracker(ctx, ns, labelScenario+"="+e.scenario)
	if err != nil {
		return err
	}
	qps := fmt.Sprint(fanoutQPS)
	r, _, err := e.startAndAdopt(ctx, tr, n, "main", "--kube-api-qps="+qps, "--kube-api-burst="+qps)
	if err != nil {
		return err
	}
	e.prof.startCPU(r, "main", time.Duration(1.2*float64(n)/fanoutQPS+5)*time.Second)
	if _, err := e.fanoutRound(ctx, res, tr, r, ns, fanoutQPS, keys, ""); err != nil {
		return err
	}
	e.prof.finish(ctx, r, "main")
	r.stop()

	// The same with more workers, to tell the rate limit from the
	// number of PATCHes in flight (workers / PATCH latency).
	workers := fmt.Sprint(fanoutWorkers)
	r, _, err = e.startAndAdopt(ctx, tr, n, "workers-"+workers, "--kube-api-qps="+qps, "--kube-api-burst="+qps, "--workers="+workers)
	if err != nil {
		return err
	}
	if _, err := e.fanoutRound(ctx, res, tr, r, ns, fanoutQPS, keys, " (--workers="+workers+")"); err != nil {
		return err
	}
	r.stop()
	res.note("fanout: reroll runs with the default --debounce=1s, so the change-to-all-rolled time includes the 1s debounce (see change to first roll)")
	res.note("fanout: the second round restarts reroll with --workers=%d (default 8) on the same Deployments and changes the ConfigMap again", fanoutWorkers)
	for _, p := range fanoutPolicies() {
		if err := e.fanoutPolicyRound(ctx, res, tr, ns, keys, p); err != nil {
			return err
		}
	}
	res.note("fanout: the policy rounds restart reroll (8 workers, %d QPS) with the ConfigMap's reroll.dev/waves and --max-rollouts-per-second as named, and change the ConfigMap once each", fanoutQPS)
	return nil
}

// fanoutPolicyRound sets the ConfigMap's waves as p says, restarts reroll
// with p's pacing, changes the ConfigMap once and records when each
// Deployment rolled.
func (e *env) fanoutPolicyRound(ctx context.Context, res *scenarioResult, tr *tracker, ns string, keys []string, p fanoutPolicy) error {
	if err := e.patchAnnotation(ctx, ns, "shared", "reroll.dev/waves", p.waves); err != nil {
		return err
	}
	qps := fmt.Sprint(fanoutQPS)
	args := []string{"--kube-api-qps=" + qps, "--kube-api-burst=" + qps}
	if p.pacing > 0 {
		args = append(args, fmt.Sprintf("--max-rollouts-per-second=%d", p.pacing))
	}
	r, _, err := e.startAndAdopt(ctx, tr, len(keys), p.label, args...)
	if err != nil {
		return err
	}
	defer r.stop()
	before := tr.counts()
	changed := time.Now()
	if err := e.patchConfigMapValue(ctx, ns, "shared", randomText(newRand(uint64(changed.UnixNano())), 32)); err != nil {
		return err
	}
	last, err := tr.waitChanged(ctx, keys, before, 2*time.Minute+time.Duration(len(keys))*40*time.Millisecond)
	if err != nil {
		return err
	}
	first, _ := tr.changeSpan(keys)
	rolled, multi, _ := rollDiff(before, tr.counts())
	suffix := p.suffix()
	res.add(fmt.Sprintf("change to all %d rolled%s", len(keys), suffix), last.Sub(changed).Seconds(), "s")
	res.add("change to first roll"+suffix, first.Sub(changed).Seconds(), "s")
	res.addTarget("Deployments rolled"+suffix, float64(rolled), "", target{Op: "==", Value: float64(len(keys))})
	res.addTarget("Deployments rolled more than once"+suffix, float64(multi), "", target{Op: "==", Value: 0})
	res.addSeries(rollSeries(suffix, changed, tr.rollTimes(keys, before)))
	return nil
}

// fanoutRound changes the ConfigMap "shared" in namespace ns once and
// records how long reroll, limited to qps requests per second, takes to
// roll every Deployment in keys, timed from when the bench sent the change,
// with suffix appended to the figure names. It returns the metrics it began
// from, for figures that go on after the round.
func (e *env) fanoutRound(ctx context.Context, res *scenarioResult, tr *tracker, r *reroll, ns string, qps int, keys []string, suffix string) (baseline, error) {
	n := len(keys)
	base, err := e.baseline(ctx, r)
	if err != nil {
		return base, err
	}
	m0, api0 := base.reroll, base.server
	before := tr.counts()
	cpu0 := e.takeCPU(r)
	// Timed from before the request: the change is committed somewhere
	// between sending and the response.
	changed := time.Now()
	if err := e.patchConfigMapValue(ctx, ns, "shared", randomText(newRand(uint64(changed.UnixNano())), 32)); err != nil {
		return base, err
	}
	answered := time.Since(changed)
	last, err := tr.waitChanged(ctx, keys, before, 2*time.Minute+time.Duration(n)*20*time.Millisecond)
	if err != nil {
		return base, err
	}
	cpu1 := e.takeCPU(r)
	first, _ := tr.changeSpan(keys)
	_, m1, err := r.waitQuiet(ctx, quietWindow, time.Minute)
	if err != nil {
		return base, err
	}
	api1, err := e.cluster.serverMetrics(ctx)
	if err != nil {
		return base, err
	}
	rolled, multi, _ := rollDiff(before, tr.counts())
	budget := 1.2 * float64(n) / float64(qps)
	res.addTarget(fmt.Sprintf("change to all %d rolled%s", n, suffix), last.Sub(changed).Seconds(), "s",
		target{Op: "<=", Value: budget, Note: fmt.Sprintf("1.2 × %d/%d", n, qps)})
	res.add("change to first roll"+suffix, first.Sub(changed).Seconds(), "s")
	res.add("  of which the bench's ConfigMap PATCH"+suffix, answered.Seconds(), "s")
	res.add("first roll to last roll"+suffix, last.Sub(first).Seconds(), "s")
	res.addTarget("Deployments rolled"+suffix, float64(rolled), "", target{Op: "==", Value: float64(n)})
	res.addTarget("Deployments rolled more than once"+suffix, float64(multi), "", target{Op: "==", Value: 0})
	res.addTarget("PATCH requests by reroll"+suffix, delta(m0, m1, "rest_client_requests_total", "method", "PATCH"), "", target{Op: "==", Value: float64(n)})
	res.add("  of which 409 Conflict"+suffix, delta(m0, m1, "rest_client_requests_total", "method", "PATCH", "code", "409"), "")
	res.add("POST requests by reroll (Events)"+suffix, delta(m0, m1, "rest_client_requests_total", "method", "POST"), "")
	res.add("Deployment PATCHes seen by kube-apiserver"+suffix, delta(api0, api1, "apiserver_request_total", deploymentPatchMatch()...), "")
	res.add("requests served by kube-apiserver, all clients"+suffix, delta(api0, api1, "apiserver_request_total"), "")
	res.add("mean PATCH latency (reroll's client)"+suffix, 1000*histogramMean(m0, m1, "rest_client_request_duration_seconds", "verb", "PATCH"), "ms")
	res.add("mean client rate-limiter wait"+suffix, 1000*histogramMean(m0, m1, "rest_client_rate_limiter_duration_seconds", "verb", "PATCH"), "ms")
	res.add("sync errors"+suffix, delta(m0, m1, "reroll_sync_errors_total"), "")
	noteSyncErrors(res, e.scenario+suffix, m0, m1)
	addCPU(res, "change to all rolled"+suffix, cpu0, cpu1)
	res.addSeries(rollSeries(suffix, changed, tr.rollTimes(keys, before)))
	return base, nil
}

// baseline is what reroll and kube-apiserver had counted before a change:
// the figures of a round are differences from it.
type baseline struct {
	reroll, server metricSet
}

// baseline scrapes reroll's and kube-apiserver's metrics.
func (e *env) baseline(ctx context.Context, r *reroll) (baseline, error) {
	m, err := r.metrics(ctx)
	if err != nil {
		return baseline{}, err
	}
	api, err := e.cluster.serverMetrics(ctx)
	if err != nil {
		return baseline{}, err
	}
	return baseline{reroll: m, server: api}, nil
}
