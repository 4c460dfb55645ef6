package main

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const (
	// stormNamespace holds the storm scenario's objects.
	stormNamespace = "bench-storm"
	// stormNodeLabel is the node label only the canary's Pods need: removed
	// after the canary's first rollout, its next Pods cannot be scheduled.
	stormNodeLabel = "bench.reroll.dev/canary"
	// kwokNode is localcluster's one node.
	kwokNode = "kwok-node-0"
	// stormPacing is the --max-rollouts-per-second of the pacing round.
	stormPacing = 50
	// stormHaltWindow is how long the bench watches reroll during the halt.
	stormHaltWindow = 30 * time.Second
)

// runStorm is one bad edit of a ConfigMap that 1,000 Deployments consume,
// with reroll.dev/waves "1,10%,100%": the first-wave Deployment's new Pods
// cannot be scheduled and its progress deadline is 10s, so its rollout
// fails. It measures the PATCHes reroll makes (ideally 1), the time from
// the change to the halt of the other 999, and what reroll asks of the API
// server during the halt. A second round, without waves, measures how
// exactly --max-rollouts-per-second=50 paces the 1,000 rolls.
func runStorm(ctx context.Context, e *env, res *scenarioResult) error {
	n := e.scaled(1000, 20)
	res.Params = map[string]any{"deployments": n, "waves": "1,10%,100%", "pacing": stormPacing}
	ns := stormNamespace
	keys, err := e.seedStorm(ctx, ns, n)
	if err != nil {
		return err
	}
	tr, err := e.startTracker(ctx, ns, labelScenario+"="+e.scenario)
	if err != nil {
		return err
	}
	r, _, err := e.startAndAdopt(ctx, tr, n, "waves", "--kube-api-qps=200", "--kube-api-burst=200")
	if err != nil {
		return err
	}
	if err := e.waitDeploymentComplete(ctx, ns, keys[0]); err != nil {
		return err
	}
	if err := e.labelNode(ctx, stormNodeLabel, ""); err != nil {
		return err
	}
	if err := e.stormHalt(ctx, res, tr, r, keys); err != nil {
		return err
	}
	r.stop()

	// Pacing: a new change, without waves, rolls all of them at 50/s.
	if err := e.patchAnnotation(ctx, ns, "shared", "reroll.dev/waves", ""); err != nil {
		return err
	}
	// Stopped with the scenario, like every reroll the bench starts.
	if _, _, err := e.startAndAdopt(ctx, tr, n, "paced", "--kube-api-qps=200", "--kube-api-burst=200", fmt.Sprintf("--max-rollouts-per-second=%d", stormPacing)); err != nil {
		return err
	}
	before := tr.counts()
	if err := e.patchConfigMapValue(ctx, ns, "shared", "second-"+randomText(newRand(11), 16)); err != nil {
		return err
	}
	if _, err := tr.waitChanged(ctx, keys, before, 2*time.Minute+time.Duration(n)*40*time.Millisecond); err != nil {
		return err
	}
	first, last := tr.changeSpan(keys)
	rolled, multi, _ := rollDiff(before, tr.counts())
	rate := float64(n-1) / last.Sub(first).Seconds()
	res.addTarget(fmt.Sprintf("paced rolls per second (--max-rollouts-per-second=%d)", stormPacing), rate, "/s",
		target{Op: "~", Value: stormPacing, Tolerance: 0.15})
	res.add("  first to last paced roll", last.Sub(first).Seconds(), "s")
	res.addTarget("  paced Deployments rolled more than once", float64(multi), "", target{Op: "==", Value: 0})
	res.addTarget("  paced Deployments rolled", float64(rolled), "", target{Op: "==", Value: float64(n)})
	res.note("storm: the canary's rollout fails because its new Pods need a node label the bench removed after its first rollout; the others have 0 replicas")
	return nil
}

// seedStorm creates the storm's ConfigMap, with waves, and n Deployments
// consuming it; the first, the canary, runs a Pod that needs stormNodeLabel.
func (e *env) seedStorm(ctx context.Context, ns string, n int) ([]string, error) {
	if err := e.createNamespaces(ctx, []string{ns}); err != nil {
		return nil, err
	}
	if err := e.labelNode(ctx, stormNodeLabel, "ok"); err != nil {
		return nil, err
	}
	cm := newConfigMap(ns, "shared", map[string]string{"value": randomText(newRand(9), 32)})
	cm.Annotations = map[string]string{"reroll.dev/waves": "1,10%,100%"}
	if err := e.createConfigMaps(ctx, 1, func(int) *corev1.ConfigMap { return cm }); err != nil {
		return nil, err
	}
	keys := make([]string, n)
	err := e.createDeployments(ctx, n, func(i int) *appsv1.Deployment {
		d := newDeployment(ns, fmt.Sprintf("d-%04d", i), e.scenario, true, consumption{envFromConfigMap: "shared"})
		d.Annotations["reroll.dev/wave-priority"] = "1"
		if i == 0 {
			d.Annotations["reroll.dev/wave-priority"] = "0"
			d.Spec.Replicas = ptr.To[int32](1)
			d.Spec.ProgressDeadlineSeconds = ptr.To[int32](10)
			d.Spec.Template.Spec.NodeSelector = map[string]string{stormNodeLabel: "ok"}
		}
		keys[i] = key(ns, d.Name)
		return d
	})
	return keys, err
}

// stormHalt makes the bad edit and records what happens until reroll holds
// every other consumer, and during stormHaltWindow after.
func (e *env) stormHalt(ctx context.Context, res *scenarioResult, tr *tracker, r *reroll, keys []string) error {
	n := len(keys)
	m0, err := r.metrics(ctx)
	if err != nil {
		return err
	}
	before := tr.counts()
	changed := time.Now()
	if err := e.patchConfigMapValue(ctx, stormNamespace, "shared", "bad-"+randomText(newRand(10), 16)); err != nil {
		return err
	}
	var halted time.Time
	var m1 metricSet
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if m1, err = r.metrics(ctx); err != nil {
			return err
		}
		if m1.sum("reroll_rollouts_held", "reason", "halted") >= float64(n-1) {
			halted = time.Now()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no halt within 3m: %v held", m1.sum("reroll_rollouts_held", "reason", "halted"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.log.printf("halted %.1fs after the change; watching %s", halted.Sub(changed).Seconds(), stormHaltWindow)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(stormHaltWindow): // the measurement window itself
	}
	m2, err := r.metrics(ctx)
	if err != nil {
		return err
	}
	rolled, multi, _ := rollDiff(before, tr.counts())
	res.addTarget("PATCHes by reroll, change to end of halt window", delta(m0, m2, "rest_client_requests_total", "method", "PATCH"), "", target{Op: "==", Value: 1, Note: "the canary"})
	res.addTarget("Deployments rolled", float64(rolled), "", target{Op: "==", Value: 1})
	res.add("  rolled more than once", float64(multi), "")
	res.add("change to halt (all others held)", halted.Sub(changed).Seconds(), "s")
	res.addTarget("held (halted)", m2.sum("reroll_rollouts_held", "reason", "halted"), "", target{Op: "==", Value: float64(n - 1)})
	res.add(fmt.Sprintf("API requests by reroll during %s of halt", stormHaltWindow), delta(m1, m2, "rest_client_requests_total"), "")
	res.add("  of which POST (Events)", delta(m1, m2, "rest_client_requests_total", "method", "POST"), "")
	res.add(fmt.Sprintf("syncs during %s of halt", stormHaltWindow), delta(m1, m2, "reroll_sync_duration_seconds_count"), "")
	res.add("sync errors", delta(m0, m2, "reroll_sync_errors_total"), "")
	return nil
}

// waitDeploymentComplete waits until the Deployment key's rollout is
// complete.
func (e *env) waitDeploymentComplete(ctx context.Context, ns, k string) error {
	name := k[len(ns)+1:]
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d, err := e.cluster.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		r := ptr.Deref(d.Spec.Replicas, 1)
		if d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == r && d.Status.AvailableReplicas == r && d.Status.Replicas == r {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not complete its rollout within 2m", k)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// labelNode sets a label of the kwok node, or removes it when value is "".
func (e *env) labelNode(ctx context.Context, label, value string) error {
	v := "null"
	if value != "" {
		v = fmt.Sprintf("%q", value)
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, label, v)
	_, err := e.cluster.client.CoreV1().Nodes().Patch(ctx, kwokNode, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: benchFieldManager})
	return err
}

// patchAnnotation sets an annotation of a ConfigMap, or removes it when
// value is "".
func (e *env) patchAnnotation(ctx context.Context, ns, name, annotation, value string) error {
	v := "null"
	if value != "" {
		v = fmt.Sprintf("%q", value)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%s}}}`, annotation, v)
	_, err := e.cluster.client.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: benchFieldManager})
	return err
}
