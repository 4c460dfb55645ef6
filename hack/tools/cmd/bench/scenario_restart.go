package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// restartNamespace holds the restart scenario's objects.
const restartNamespace = "bench-restart"

// runRestart restarts reroll over 2,000 adopted Deployments: 1,900 share
// 100 ConfigMaps (19 each) and 100 have a ConfigMap of their own. First
// without any change (it must write nothing and roll nothing), then after
// changing the 100 own ConfigMaps while it was down (exactly those 100 must
// roll, once each).
func runRestart(ctx context.Context, e *env, res *scenarioResult) error {
	n := e.scaled(2000, 20)
	own := e.scaled(100, 2)
	shared := e.scaled(100, 1)
	perShared := max(1, (n-own)/shared)
	n = own + perShared*shared
	res.Params = map[string]any{"deployments": n, "sharedConfigMaps": shared, "deploymentsPerSharedConfigMap": perShared, "ownConfigMaps": own}
	ns := restartNamespace
	if err := e.createNamespaces(ctx, []string{ns}); err != nil {
		return err
	}
	sharedName := func(i int) string { return fmt.Sprintf("shared-%03d", i) }
	ownName := func(i int) string { return fmt.Sprintf("own-%03d", i) }
	if err := e.createConfigMaps(ctx, shared+own, func(i int) *corev1.ConfigMap {
		name := sharedName(i)
		if i >= shared {
			name = ownName(i - shared)
		}
		return newConfigMap(ns, name, map[string]string{"value": randomText(newRand(uint64(i)), 32)})
	}); err != nil {
		return err
	}
	ownKeys := make([]string, own)
	for i := range own {
		ownKeys[i] = key(ns, ownName(i))
	}
	if err := e.createDeployments(ctx, n, func(i int) *appsv1.Deployment {
		if i < own {
			return newDeployment(ns, ownName(i), e.scenario, true, consumption{envFromConfigMap: ownName(i)})
		}
		j := i - own
		c := j / perShared
		return newDeployment(ns, fmt.Sprintf("s-%03d-%02d", c, j%perShared), e.scenario, true, consumption{envFromConfigMap: sharedName(c)})
	}); err != nil {
		return err
	}
	tr, err := e.startTracker(ctx, ns, labelScenario+"="+e.scenario)
	if err != nil {
		return err
	}

	// First start: adopt everything, then stop.
	r, first, err := e.startAndAdopt(ctx, tr, n, "first")
	if err != nil {
		return err
	}
	res.add(fmt.Sprintf("first start: start to %d adopted", n), first.adopted.Seconds(), "s")
	took, killed := r.stop()
	res.add("SIGTERM to exit", took.Seconds(), "s")
	if killed {
		res.note("restart: reroll did not exit within %s of SIGTERM and was killed", rerollStopGrace)
	} else if r.proc.err != nil {
		res.note("restart: reroll exited after SIGTERM with %v", r.proc.err)
	}

	// Restart without changes.
	gens, counts := tr.generations(), tr.counts()
	r, err = e.startReroll(ctx, "restart")
	if err != nil {
		return err
	}
	e.prof.startCPU(r, "restart", 10*time.Second)
	ready, err := r.waitReady(ctx, readyTimeout)
	if err != nil {
		return err
	}
	lastActive, m, err := r.waitQuiet(ctx, quietWindow, adoptTimeout(n))
	if err != nil {
		return err
	}
	res.add("restart: start to /readyz 200", ready.Seconds(), "s")
	res.add("restart: start to queue drained", lastActive.Sub(r.started).Seconds(), "s")
	res.add("restart: syncs", m.sum("reroll_sync_duration_seconds_count"), "")
	res.add("restart: sync errors", m.sum("reroll_sync_errors_total"), "")
	res.addTarget("restart: PATCH requests", m.sum("rest_client_requests_total", "method", "PATCH"), "", target{Op: "==", Value: 0})
	res.addTarget("restart: rollouts", m.sum("reroll_rollouts_total"), "", target{Op: "==", Value: 0})
	generationChanged := 0
	for k, g := range tr.generations() {
		if g != gens[k] {
			generationChanged++
		}
	}
	res.addTarget("restart: Deployments with a new generation", float64(generationChanged), "", target{Op: "==", Value: 0})
	rolled, _, _ := rollDiff(counts, tr.counts())
	res.addTarget("restart: Deployments rolled (watch)", float64(rolled), "", target{Op: "==", Value: 0})
	e.prof.finish(ctx, r, "restart")
	r.stop()

	// Change the own ConfigMaps while reroll is down, then start it.
	if err := forEach(ctx, own, seedWorkers, func(ctx context.Context, i int) error {
		return e.patchConfigMapValue(ctx, ns, ownName(i), randomText(newRand(uint64(1000+i)), 32))
	}); err != nil {
		return err
	}
	counts = tr.counts()
	r, err = e.startReroll(ctx, "after-changes")
	if err != nil {
		return err
	}
	last, err := tr.waitChanged(ctx, ownKeys, counts, adoptTimeout(n))
	if err != nil {
		return err
	}
	res.add(fmt.Sprintf("changed while down: start to %d rolled", own), last.Sub(r.started).Seconds(), "s")
	if _, m, err = r.waitQuiet(ctx, quietWindow, adoptTimeout(n)); err != nil {
		return err
	}
	rolled, multi, rolledKeys := rollDiff(counts, tr.counts())
	others := 0
	for _, k := range rolledKeys {
		if !slices.Contains(ownKeys, k) {
			others++
		}
	}
	res.addTarget("changed while down: Deployments rolled", float64(rolled), "", target{Op: "==", Value: float64(own)})
	res.addTarget("changed while down: rolled more than once", float64(multi), "", target{Op: "==", Value: 0})
	res.addTarget("changed while down: others rolled", float64(others), "", target{Op: "==", Value: 0})
	res.addTarget("changed while down: PATCH requests", m.sum("rest_client_requests_total", "method", "PATCH"), "", target{Op: "==", Value: float64(own)})
	res.add("changed while down: sync errors", m.sum("reroll_sync_errors_total"), "")
	noteSyncErrors(res, "restart", nil, m)
	return nil
}
