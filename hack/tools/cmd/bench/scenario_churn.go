package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const (
	// churnNamespace holds the churn scenario's objects.
	churnNamespace = "bench-churn"
	// churnRate is how many config updates per second the churn sends.
	churnRate = 50
	// churnWorkers send the updates, so that one slow request does not
	// hold up the pace.
	churnWorkers = 8
	// churnPoll is how often /metrics is scraped for the queue depth
	// during the churn.
	churnPoll = 200 * time.Millisecond
)

// runChurn sends 50 ConfigMap updates per second for 60s, round-robin over
// the ConfigMaps of 500 Deployments (one each), with reroll at its
// defaults, and measures its CPU time per 1,000 rolls, its largest queue
// depth and its sync errors.
func runChurn(ctx context.Context, e *env, res *scenarioResult) error {
	n := e.scaled(500, 5)
	duration := max(5*time.Second, time.Duration(float64(time.Minute)*e.opts.scale))
	total := int(churnRate * duration.Seconds())
	res.Params = map[string]any{"deployments": n, "updatesPerSecond": churnRate, "seconds": duration.Seconds()}
	ns := churnNamespace
	if err := e.createNamespaces(ctx, []string{ns}); err != nil {
		return err
	}
	name := func(i int) string { return fmt.Sprintf("c-%03d", i) }
	if err := e.createConfigMaps(ctx, n, func(i int) *corev1.ConfigMap {
		return newConfigMap(ns, name(i), map[string]string{"value": randomText(newRand(uint64(i)), 32)})
	}); err != nil {
		return err
	}
	if err := e.createDeployments(ctx, n, func(i int) *appsv1.Deployment {
		return newDeployment(ns, name(i), e.scenario, true, consumption{envFromConfigMap: name(i)})
	}); err != nil {
		return err
	}
	tr, err := e.startTracker(ctx, ns, labelScenario+"="+e.scenario)
	if err != nil {
		return err
	}
	r, _, err := e.startAndAdopt(ctx, tr, n, "main")
	if err != nil {
		return err
	}
	m0, err := r.metrics(ctx)
	if err != nil {
		return err
	}
	cpu0, err := r.cpu()
	if err != nil {
		return err
	}
	counts := tr.counts()

	// Sample the queue depth until the churn has drained.
	var maxDepth atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Go(func() {
		tick := time.NewTicker(churnPoll)
		defer tick.Stop()
		for {
			if m, err := r.metrics(sampleCtx); err == nil {
				if d := int64(m.sum("workqueue_depth", "name", queueName)); d > maxDepth.Load() {
					maxDepth.Store(d)
				}
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
		}
	})
	defer func() {
		stopSampling()
		sampling.Wait()
	}()

	e.prof.startCPU(r, "main", duration)
	e.log.printf("churn: %d updates at %d/s over %d ConfigMaps", total, churnRate, n)
	began := time.Now()
	sent, err := e.churn(ctx, ns, n, total, name)
	if err != nil {
		return err
	}
	sendTime := time.Since(began)
	lastActive, m1, err := r.waitQuiet(ctx, quietWindow, 2*time.Minute)
	if err != nil {
		return err
	}
	cpu1, err := r.cpu()
	if err != nil {
		return err
	}
	stopSampling()
	sampling.Wait()
	hwm, _, err := r.memory()
	if err != nil {
		return err
	}

	rolls := delta(m0, m1, "reroll_rollouts_total")
	rolled := 0
	for k, c := range tr.counts() {
		rolled += c - counts[k]
	}
	cpu := cpu1 - cpu0
	res.add("config updates sent", float64(sent), "")
	res.add("update rate achieved", float64(sent)/sendTime.Seconds(), "/s")
	res.add("rolls (reroll_rollouts_total)", rolls, "")
	res.add("pod template changes (watch)", float64(rolled), "")
	res.add("reroll CPU time, churn start to drained", cpu, "s")
	if rolls > 0 {
		res.add("reroll CPU per 1,000 rolls", cpu/rolls*1000, "s")
	}
	res.add("max workqueue_depth", float64(maxDepth.Load()), "")
	res.add("last update to queue drained", lastActive.Sub(began.Add(sendTime)).Seconds(), "s")
	res.addTarget("sync errors", delta(m0, m1, "reroll_sync_errors_total"), "", target{Op: "==", Value: 0})
	noteSyncErrors(res, "churn", m0, m1)
	res.add("peak RSS (VmHWM)", mib(hwm), "MiB")
	res.note("churn: CPU is /proc/PID/stat utime+stime from the first update until reroll's queue drained (quiet for %s), including its /metrics being scraped every %s", quietWindow, churnPoll)
	e.prof.finish(ctx, r, "main")
	return nil
}

// churn patches ConfigMap i % n for i in [0, total), paced at churnRate per
// second by a ticker, and returns how many updates it sent.
func (e *env) churn(ctx context.Context, namespace string, n, total int, name func(int) string) (int, error) {
	jobs := make(chan int)
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, churnWorkers)
	for w := range churnWorkers {
		wg.Go(func() {
			rng := newRand(uint64(100 + w))
			for i := range jobs {
				if err := e.patchConfigMapValue(ctx, namespace, name(i%n), randomText(rng, 32)); err != nil {
					errs <- err
					return
				}
				sent.Add(1)
			}
		})
	}
	tick := time.NewTicker(time.Second / churnRate)
	var err error
loop:
	for i := 0; i < total; i++ {
		select {
		case <-tick.C:
		case err = <-errs:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
		select {
		case jobs <- i:
		case err = <-errs:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return int(sent.Load()), err
}
