package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	// quietWindow is how long reroll's queue must be idle to count as
	// drained: well over the default 1s debounce, during which a debounced
	// key is invisible in the queue metrics.
	quietWindow = 3 * time.Second
	// readyTimeout bounds the wait for /readyz.
	readyTimeout = 5 * time.Minute
	// rollTimeout bounds the wait for one Deployment to roll.
	rollTimeout = 30 * time.Second
	// benchFieldManager names the bench in what it writes.
	benchFieldManager = "reroll-bench"
)

// adoptTimeout bounds the wait for reroll to adopt n Deployments: at its
// default 100 requests per second that takes n/100 seconds.
func adoptTimeout(n int) time.Duration {
	return 2*time.Minute + time.Duration(n)*50*time.Millisecond
}

// startupTimes are how long reroll took to come up and adopt everything.
type startupTimes struct {
	ready   time.Duration // process start to /readyz 200
	adopted time.Duration // process start to the last Deployment adopted
}

// startAndAdopt starts reroll and waits until it is ready, has adopted n
// tracked Deployments, and its queue has drained.
func (e *env) startAndAdopt(ctx context.Context, tr *tracker, n int, label string, args ...string) (*reroll, startupTimes, error) {
	var t startupTimes
	r, err := e.startReroll(ctx, label, args...)
	if err != nil {
		return nil, t, err
	}
	if t.ready, err = r.waitReady(ctx, readyTimeout); err != nil {
		return nil, t, err
	}
	e.log.printf("reroll %s ready after %.2fs", label, t.ready.Seconds())
	if err := tr.waitConsumed(ctx, n, adoptTimeout(n)); err != nil {
		return nil, t, err
	}
	t.adopted = time.Since(r.started)
	if _, _, err := r.waitQuiet(ctx, quietWindow, adoptTimeout(n)); err != nil {
		return nil, t, err
	}
	e.log.printf("reroll %s adopted %d Deployments after %.2fs", label, n, t.adopted.Seconds())
	return r, t, nil
}

// patchConfigMapValue changes the "value" key of a ConfigMap with a JSON
// merge patch, which needs no resourceVersion.
func (e *env) patchConfigMapValue(ctx context.Context, namespace, name, value string) error {
	body := fmt.Appendf(nil, `{"data":{"value":%q}}`, value)
	_, err := e.cluster.client.CoreV1().ConfigMaps(namespace).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: benchFieldManager})
	if err != nil {
		return fmt.Errorf("patching ConfigMap %s/%s: %w", namespace, name, err)
	}
	return nil
}

// delta returns how much a counter grew between two scrapes.
func delta(before, after metricSet, name string, match ...string) float64 {
	return after.sum(name, match...) - before.sum(name, match...)
}

// noteSyncErrors notes, by reason, the sync errors reroll counted between
// two scrapes (before may be nil for a fresh process).
func noteSyncErrors(res *scenarioResult, what string, before, after metricSet) {
	was := before.byLabel("reroll_sync_errors_total", "reason")
	for reason, v := range after.byLabel("reroll_sync_errors_total", "reason") {
		if d := v - was[reason]; d > 0 {
			res.note("%s: %v sync errors with reason %s", what, d, reason)
		}
	}
}

// etcdSize returns the size of etcd's database file, which is what counts
// against its backend quota (2 GiB by default).
func (e *env) etcdSize() (int64, error) {
	fi, err := os.Stat(filepath.Join(e.cluster.info.StateDir, "etcd", "member", "snap", "db"))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// cpuSnapshot is the CPU time used so far by the machine and by each
// process of interest.
type cpuSnapshot struct {
	machineBusy, machineTotal uint64
	procs                     map[string]float64 // CPU seconds by process name
}

// takeCPU snapshots the CPU time of the machine, the control-plane
// components and reroll.
func (e *env) takeCPU(r *reroll) cpuSnapshot {
	s := cpuSnapshot{procs: map[string]float64{}}
	s.machineBusy, s.machineTotal, _ = machineCPU()
	pids := map[string]int{"reroll": r.pid()}
	for name, pid := range e.cluster.info.PIDs {
		pids[name] = pid
	}
	for name, pid := range pids {
		if v, err := cpuSeconds(pid); err == nil {
			s.procs[name] = v
		}
	}
	return s
}

// addCPU records how busy the machine was between two snapshots and the
// CPU seconds each process used, as figures prefixed with what.
func addCPU(res *scenarioResult, what string, before, after cpuSnapshot) {
	if total := after.machineTotal - before.machineTotal; total > 0 {
		res.add(what+": machine CPU busy", 100*float64(after.machineBusy-before.machineBusy)/float64(total), "%")
	}
	for _, name := range []string{"reroll", "kube-apiserver", "etcd", "kube-controller-manager"} {
		if a, ok := after.procs[name]; ok {
			res.add(what+": CPU of "+name, a-before.procs[name], "s")
		}
	}
}

// histogramMean returns the mean of the observations a histogram got
// between two scrapes, or 0 without any.
func histogramMean(before, after metricSet, name string, match ...string) float64 {
	n := delta(before, after, name+"_count", match...)
	if n == 0 {
		return 0
	}
	return delta(before, after, name+"_sum", match...) / n
}

// addMemory records reroll's peak RSS, RSS and heap in use, named with
// when ("after sync"), and the objects it caches, by kind, from the scrape m.
func addMemory(res *scenarioResult, r *reroll, m metricSet, when string) error {
	hwm, rss, err := r.memory()
	if err != nil {
		return err
	}
	res.add("peak RSS (VmHWM) "+when, mib(hwm), "MiB")
	res.add("RSS (VmRSS) "+when, mib(rss), "MiB")
	res.add("heap in use "+when, mib(uint64(m.sum("go_memstats_heap_inuse_bytes"))), "MiB")
	for kind, n := range m.byLabel("reroll_cached_objects", "kind") {
		res.Params["cached"+kind] = n
	}
	return nil
}

// recordSeeding records how long the bench took to seed and etcd's size
// after it.
func (e *env) recordSeeding(res *scenarioResult, seeded time.Duration) {
	res.add("seeding time (bench client)", seeded.Seconds(), "s")
	if size, err := e.etcdSize(); err == nil {
		res.Params["etcdDBBytesAfterSeeding"] = size
	}
	e.log.printf("seeded in %.1fs", seeded.Seconds())
}
