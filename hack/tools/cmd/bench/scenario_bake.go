package main

import (
	"context"
	"fmt"
	"time"
)

// bakePoll is how often recordBake samples reroll's pod watches.
const bakePoll = 200 * time.Millisecond

// recordBake follows the bake of a fan-out that began at the scrapes m0
// (reroll's) and api0 (kube-apiserver's): it samples reroll's pod watches
// (reroll_pod_watches) until they are back to zero, every bake over, and
// records the most watched at once, how long the bake kept any, the
// requests for pods kube-apiserver served and reroll's GETs since m0, and
// reroll's memory then. With --bake-time=0s reroll watches no pods, which
// is the baseline.
func (e *env) recordBake(ctx context.Context, res *scenarioResult, r *reroll, base baseline, timeout time.Duration) error {
	m0, api0 := base.reroll, base.server
	began := time.Now()
	most, lastSeen := 0.0, time.Time{}
	deadline := began.Add(timeout)
	for {
		m, err := r.metrics(ctx)
		if err != nil {
			return err
		}
		watches := m.sum("reroll_pod_watches")
		if watches > most {
			most = watches
		}
		if watches > 0 {
			lastSeen = time.Now()
		}
		if watches == 0 && m.sum("reroll_rollouts_baking") == 0 {
			api1, err := e.cluster.serverMetrics(ctx)
			if err != nil {
				return err
			}
			res.add("bake: pod watches at once (namespaces), at most", most, "")
			if !lastSeen.IsZero() {
				res.add("bake: pods watched until, after the fan-out", lastSeen.Sub(began).Seconds(), "s")
			}
			res.add("bake: pod LISTs served by kube-apiserver, change to bake over", delta(api0, api1, "apiserver_request_total", "resource", "pods", "verb", "LIST"), "")
			res.add("bake: pod WATCHes served by kube-apiserver, change to bake over", delta(api0, api1, "apiserver_request_total", "resource", "pods", "verb", "WATCH"), "")
			res.add("bake: GET requests by reroll (get, list, watch), change to bake over", delta(m0, m, "rest_client_requests_total", "method", "GET"), "")
			return addMemory(res, r, m, "after the bake")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reroll still watched the pods of %v workloads %s after the fan-out", watches, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(bakePoll): // a sample of a gauge that has no watch
		}
	}
}
