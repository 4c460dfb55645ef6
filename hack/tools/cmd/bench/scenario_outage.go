package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

const (
	// outageNamespace holds the outage scenario's objects.
	outageNamespace = "bench-outage"
	// outageLength is how long kube-apiserver stays down.
	outageLength = 20 * time.Second
	// outageRecoveryTarget is the bound on how long after the API
	// server's /readyz a change takes to roll.
	outageRecoveryTarget = 5.0
)

// runOutage stops kube-apiserver for 20 s while reroll runs over 200
// adopted Deployments that share one ConfigMap, starts it again, changes
// the ConfigMap as soon as /readyz passes, and measures how long until
// every Deployment rolled (the recovery time), and that none rolled twice.
func runOutage(ctx context.Context, e *env, res *scenarioResult) error {
	n := e.scaled(200, 10)
	ns := outageNamespace
	res.Params = map[string]any{"deployments": n, "outageSeconds": outageLength.Seconds()}
	if err := e.createNamespaces(ctx, []string{ns}); err != nil {
		return err
	}
	if err := e.createConfigMaps(ctx, 1, func(int) *corev1.ConfigMap {
		return newConfigMap(ns, "shared", map[string]string{"value": "0"})
	}); err != nil {
		return err
	}
	keys := make([]string, n)
	if err := e.createDeployments(ctx, n, func(i int) *appsv1.Deployment {
		name := fmt.Sprintf("o-%04d", i)
		keys[i] = key(ns, name)
		return newDeployment(ns, name, e.scenario, true, consumption{envFromConfigMap: "shared"})
	}); err != nil {
		return err
	}
	tr, err := e.startTracker(ctx, ns, labelScenario+"="+e.scenario)
	if err != nil {
		return err
	}
	r, _, err := e.startAndAdopt(ctx, tr, n, "outage")
	if err != nil {
		return err
	}
	tr.stop() // its watch would not outlive the outage usefully

	if err := e.cluster.toggleAPIServer(ctx, false); err != nil {
		return err
	}
	down := time.Now()
	if code, _, err := r.get(ctx, "/healthz"); err != nil || code != http.StatusInternalServerError {
		res.note("outage: /healthz answered %d (%v) during the outage, want 500", code, err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(outageLength - time.Since(down)): // the outage itself
	}
	if err := e.cluster.toggleAPIServer(ctx, true); err != nil {
		return err
	}
	if err := e.cluster.waitAPIReady(ctx); err != nil {
		return err
	}
	ready := time.Now()
	tr, err = e.startTracker(ctx, ns, labelScenario+"="+e.scenario)
	if err != nil {
		return err
	}
	counts := tr.counts()
	if err := e.patchConfigMapValue(ctx, ns, "shared", "1"); err != nil {
		return err
	}
	changed := time.Now()
	last, err := tr.waitChanged(ctx, keys, counts, adoptTimeout(n))
	if err != nil {
		return err
	}
	res.add("kube-apiserver out for 20 s: /readyz to the change", changed.Sub(ready).Seconds(), "s")
	res.addTarget(fmt.Sprintf("kube-apiserver out for 20 s: change to %d rolled", n), last.Sub(changed).Seconds(), "s", target{Op: "<=", Value: outageRecoveryTarget})
	_, m, err := r.waitQuiet(ctx, quietWindow, adoptTimeout(n))
	if err != nil {
		return err
	}
	rolled, multi, _ := rollDiff(counts, tr.counts())
	res.addTarget("after the outage: Deployments rolled", float64(rolled), "", target{Op: "==", Value: float64(n)})
	res.addTarget("after the outage: rolled more than once", float64(multi), "", target{Op: "==", Value: 0})
	if code, _, err := r.get(ctx, "/healthz"); err != nil || code != http.StatusOK {
		res.note("outage: /healthz answered %d (%v) after the outage, want 200", code, err)
	}
	noteSyncErrors(res, "outage", nil, m)
	return nil
}

// toggleAPIServer stops kube-apiserver (running false) or starts it again
// (true) through localcluster's SIGUSR1, and waits until cluster.json shows
// it so.
func (c *cluster) toggleAPIServer(ctx context.Context, running bool) error {
	before := c.pids()["kube-apiserver"]
	if err := c.proc.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		pid := c.pids()["kube-apiserver"]
		return (pid != 0) == running && pid != before, nil
	})
}

// pids reads the PIDs of the running components from cluster.json; none
// if it cannot be read.
func (c *cluster) pids() map[string]int {
	b, err := os.ReadFile(filepath.Join(c.info.StateDir, "cluster.json"))
	if err != nil {
		return nil
	}
	var info clusterInfo
	if json.Unmarshal(b, &info) != nil {
		return nil
	}
	return info.PIDs
}

// waitAPIReady waits until kube-apiserver's /readyz answers ok.
func (c *cluster) waitAPIReady(ctx context.Context) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		body, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
}
