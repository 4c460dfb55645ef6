package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
)

// evalInterval is how often the tests evaluate an alert, Prometheus'
// default evaluation_interval.
const evalInterval = time.Minute

// alertCase is one scenario of one alert: input series in promqltest's load
// syntax (one sample a minute from time 0; "_" is a missed scrape, "stale"
// a target gone), the time at which the alert is looked at after being
// evaluated every minute until then, and whether it must be firing then,
// carrying labels.
type alertCase struct {
	alert, name string
	series      []string
	at          time.Duration
	fires       bool
	labels      map[string]string
}

// sel is the default selector of the chart's rules, rendered in
// renderNamespace: every series of reroll carries it.
const sel = `namespace="` + renderNamespace + `"`

// alertCases are the scenarios each alert must fire on or stay quiet on,
// written for the chart's default thresholds (docs/alerts.md quotes them).
func alertCases() []alertCase {
	return append(availabilityCases(), append(holdCases(), append(bakeCases(), append(errorCases(), changeCases()...)...)...)...)
}

// availabilityCases are the scenarios of RerollDown and RerollNoLeader.
func availabilityCases() []alertCase {
	return []alertCase{
		{alert: "RerollDown", name: "the only replica stopped being scraped 10m ago", at: 20 * time.Minute, fires: true,
			series: []string{`reroll_leader{` + sel + `, instance="a"} 1x9 stale`}},
		{alert: "RerollDown", name: "reroll runs only in another namespace", at: 10 * time.Minute, fires: true,
			series: []string{`reroll_leader{namespace="other", instance="a"} 1x20`}},
		{alert: "RerollDown", name: "one standby, no leader: that is RerollNoLeader's", at: 30 * time.Minute,
			series: []string{`reroll_leader{` + sel + `, instance="a"} 0x30`}},
		{alert: "RerollDown", name: "a restart: scraped again after 3m", at: 20 * time.Minute,
			series: []string{`reroll_leader{` + sel + `, instance="a"} 1x5 stale`, `reroll_leader{` + sel + `, instance="b"} _x8 1x12`}},
		{alert: "RerollNoLeader", name: "two standbys for 10m", at: 10 * time.Minute, fires: true,
			series: []string{`reroll_leader{` + sel + `, instance="a"} 0x10`, `reroll_leader{` + sel + `, instance="b"} 0x10`}},
		{alert: "RerollNoLeader", name: "a hand-over of 3m", at: 20 * time.Minute,
			series: []string{`reroll_leader{` + sel + `, instance="a"} 1 1 0x18`, `reroll_leader{` + sel + `, instance="b"} 0 0 0 0 0 1x15`}},
		{alert: "RerollNoLeader", name: "nothing scraped: that is RerollDown's", at: 20 * time.Minute,
			series: []string{`reroll_leader{namespace="other"} 1x20`}},
	}
}

// holdCases are the scenarios of RerollChangeHalted and RerollRollsHeld.
func holdCases() []alertCase {
	return []alertCase{
		{alert: "RerollChangeHalted", name: "3 workloads halted for 18m", at: 20 * time.Minute, fires: true,
			series: []string{`reroll_rollouts_held{` + sel + `, reason="halted"} 0 0 3x18`}},
		{alert: "RerollChangeHalted", name: "halted for 10m, then recovered", at: 20 * time.Minute,
			series: []string{`reroll_rollouts_held{` + sel + `, reason="halted"} 0 3x9 0x10`}},
		{alert: "RerollChangeHalted", name: "held by a wave, not a halt", at: 30 * time.Minute,
			series: []string{`reroll_rollouts_held{` + sel + `, reason="wave"} 3x30`, `reroll_rollouts_held{` + sel + `, reason="halted"} 0x30`}},
		{alert: "RerollRollsHeld", name: "a wave held for 70m", at: 70 * time.Minute, fires: true, labels: map[string]string{"reason": "wave"},
			series: []string{`reroll_rollouts_held{` + sel + `, reason="wave"} 2x70`, `reroll_rollouts_held{` + sel + `, reason="paced"} 0x70`}},
		{alert: "RerollRollsHeld", name: "the in-flight cap held for 70m", at: 70 * time.Minute, fires: true, labels: map[string]string{"reason": "inflight"},
			series: []string{`reroll_rollouts_held{` + sel + `, reason="inflight"} 1x70`}},
		{alert: "RerollRollsHeld", name: "paused and outside a window for 70m, on purpose", at: 70 * time.Minute,
			series: []string{`reroll_rollouts_held{` + sel + `, reason="paused"} 5x70`, `reroll_rollouts_held{` + sel + `, reason="window"} 5x70`}},
		{alert: "RerollRollsHeld", name: "halted for 70m: that is RerollChangeHalted's", at: 70 * time.Minute,
			series: []string{`reroll_rollouts_held{` + sel + `, reason="halted"} 5x70`}},
		{alert: "RerollRollsHeld", name: "paced for 50m, then through", at: 70 * time.Minute,
			series: []string{`reroll_rollouts_held{` + sel + `, reason="paced"} 40x50 0x20`}},
		{alert: "RerollRollsHeld", name: "18 waves, each rolling 2m and baking 30s: held 45m, then through", at: 70 * time.Minute,
			series: []string{`reroll_rollouts_held{` + sel + `, reason="wave"} 34x45 0x25`}},
	}
}

// bakeCases are the scenarios of RerollBakeFailed.
func bakeCases() []alertCase {
	return []alertCase{
		{alert: "RerollBakeFailed", name: "a Deployment's bake failed 5m ago", at: 30 * time.Minute, fires: true, labels: map[string]string{"kind": "Deployment"},
			series: []string{`reroll_bake_failures_total{` + sel + `, kind="Deployment"} 1x24 2x6`}},
		{alert: "RerollBakeFailed", name: "the first failure of a kind: the series appears at 1", at: 15 * time.Minute, fires: true, labels: map[string]string{"kind": "StatefulSet"},
			series: []string{`reroll_bake_failures_total{` + sel + `, kind="Deployment"} 1x15`, `reroll_bake_failures_total{` + sel + `, kind="StatefulSet"} _x10 1x5`}},
		{alert: "RerollBakeFailed", name: "a restart, then a failure: the counter fell from 3 to 1", at: 20 * time.Minute, fires: true, labels: map[string]string{"kind": "Deployment"},
			series: []string{`reroll_bake_failures_total{` + sel + `, kind="Deployment"} 3x10 _x2 1x8`}},
		{alert: "RerollBakeFailed", name: "failures over an hour ago, none since", at: 70 * time.Minute,
			series: []string{`reroll_bake_failures_total{` + sel + `, kind="Deployment"} _x2 1 3x67`}},
		{alert: "RerollBakeFailed", name: "a restart after failures: the new replica has failed none", at: 20 * time.Minute,
			series: []string{`reroll_bake_failures_total{` + sel + `, instance="a", kind="Deployment"} 3x10 stale`, `reroll_leader{` + sel + `, instance="b"} _x11 1x9`}},
	}
}

// errorCases are the scenarios of RerollSyncErrors and RerollEventsDropped.
func errorCases() []alertCase {
	return []alertCase{
		{alert: "RerollSyncErrors", name: "two errors a minute for 30m", at: 30 * time.Minute, fires: true,
			series: []string{`reroll_sync_errors_total{` + sel + `, reason="Forbidden"} 0+2x30`}},
		{alert: "RerollSyncErrors", name: "one burst of conflicts", at: 30 * time.Minute,
			series: []string{`reroll_sync_errors_total{` + sel + `, reason="Conflict"} 0 0 7x28`}},
		{alert: "RerollSyncErrors", name: "errors for 10m, then none", at: 30 * time.Minute,
			series: []string{`reroll_sync_errors_total{` + sel + `, reason="Timeout"} 0+1x10 10x20`}},
		{alert: "RerollEventsDropped", name: "drops of a series already there", at: 15 * time.Minute, fires: true, labels: map[string]string{"reason": "Rolled"},
			series: []string{`reroll_events_dropped_total{` + sel + `, reason="Rolled"} 3x10 10x10`}},
		{alert: "RerollEventsDropped", name: "the first drops: the series appears at 400", at: 15 * time.Minute, fires: true, labels: map[string]string{"reason": "RolloutHeld"},
			series: []string{`reroll_events_dropped_total{` + sel + `, reason="RolloutHeld"} _x10 400x10`}},
		{alert: "RerollEventsDropped", name: "drops 30m ago", at: 40 * time.Minute,
			series: []string{`reroll_events_dropped_total{` + sel + `, reason="Rolled"} 5 9x40`}},
	}
}

// changeCases are the scenarios of RerollHashKeyReplaced and
// RerollWatchedKindMissing.
func changeCases() []alertCase {
	return []alertCase{
		{alert: "RerollHashKeyReplaced", name: "reroll restarted with a new key and re-baselined 120 workloads", at: 10 * time.Minute, fires: true,
			series: []string{`reroll_rollouts_skipped_total{` + sel + `, instance="a", reason="unchanged"} 0+3x4 stale`, `reroll_rollouts_skipped_total{` + sel + `, instance="b", reason="rebaselined"} _x5 120x5`}},
		{alert: "RerollHashKeyReplaced", name: "workloads re-baselined by a running reroll", at: 10 * time.Minute, fires: true,
			series: []string{`reroll_rollouts_skipped_total{` + sel + `, reason="rebaselined"} 2x5 50x5`}},
		{alert: "RerollHashKeyReplaced", name: "only unchanged and adopted workloads", at: 30 * time.Minute,
			series: []string{`reroll_rollouts_skipped_total{` + sel + `, reason="unchanged"} 0+10x30`, `reroll_rollouts_skipped_total{` + sel + `, reason="adopted"} _x10 200x20`}},
		{alert: "RerollHashKeyReplaced", name: "re-baselined 25m ago", at: 40 * time.Minute,
			series: []string{`reroll_rollouts_skipped_total{` + sel + `, reason="rebaselined"} _x15 7x25`}},
		{alert: "RerollWatchedKindMissing", name: "reroll runs and caches no Rollout", at: 15 * time.Minute, fires: true, labels: map[string]string{"kind": "Rollout.argoproj.io"},
			series: []string{`reroll_leader{` + sel + `} 1x15`, `reroll_cached_objects{` + sel + `, kind="Deployment"} 5x15`}},
		{alert: "RerollWatchedKindMissing", name: "Rollouts cached", at: 15 * time.Minute,
			series: []string{`reroll_leader{` + sel + `} 1x15`, `reroll_cached_objects{` + sel + `, kind="Rollout.argoproj.io"} 0x15`}},
		{alert: "RerollWatchedKindMissing", name: "the CRD installed after 5m", at: 15 * time.Minute,
			series: []string{`reroll_leader{` + sel + `} 1x15`, `reroll_cached_objects{` + sel + `, kind="Rollout.argoproj.io"} _x5 2x10`}},
		{alert: "RerollWatchedKindMissing", name: "reroll down: that is RerollDown's", at: 15 * time.Minute,
			series: []string{`reroll_cached_objects{namespace="other", kind="Rollout.argoproj.io"} 1x15`}},
	}
}

// TestAlertsFireAndStayQuiet evaluates each alert of the chart's rendered
// PrometheusRule, with its default thresholds, in Prometheus' own rule
// engine, every minute over input series, and checks that it fires on the
// series that should fire it and stays quiet on those that should not.
// Every alert must have both kinds of case.
func TestAlertsFireAndStayQuiet(t *testing.T) {
	alerts := renderedAlerts(t)
	fireCases, quietCases := map[string]int{}, map[string]int{}
	for _, c := range alertCases() {
		rule, ok := alerts[c.alert]
		if !ok {
			t.Errorf("case %q: the chart renders no alert %s", c.name, c.alert)
			continue
		}
		if c.fires {
			fireCases[c.alert]++
		} else {
			quietCases[c.alert]++
		}
		t.Run(c.alert+"/"+c.name, func(t *testing.T) {
			firing := firingAt(t, rule, c.series, c.at)
			checkFiring(t, c, firing)
		})
	}
	for name := range alerts {
		if fireCases[name] == 0 || quietCases[name] == 0 {
			t.Errorf("alert %s has %d cases that fire it and %d that do not; it needs both", name, fireCases[name], quietCases[name])
		}
	}
}

// checkFiring compares the alerts firing at c.at with what c expects, and
// checks that their annotations expanded.
func checkFiring(t *testing.T, c alertCase, firing []*rules.Alert) {
	t.Helper()
	if !c.fires {
		for _, a := range firing {
			t.Errorf("fires at %v with %s; want quiet", c.at, a.Labels)
		}
		return
	}
	if len(firing) == 0 {
		t.Fatalf("quiet at %v; want firing", c.at)
	}
	for _, a := range firing {
		for k, v := range c.labels {
			if got := a.Labels.Get(k); got != v {
				t.Errorf("fires with %s=%q; want %q", k, got, v)
			}
		}
		a.Annotations.Range(func(l labels.Label) {
			if strings.Contains(l.Value, "<error") || strings.Contains(l.Value, "<no value>") || strings.Contains(l.Value, "{{") {
				t.Errorf("annotation %s did not expand: %q", l.Name, l.Value)
			}
		})
	}
}

// firingAt loads series into a fresh TSDB, evaluates rule every
// evalInterval from time 0 through at, as a rule group would, and returns
// the alerts firing at the last evaluation.
func firingAt(t *testing.T, rule rulefmt.Rule, series []string, at time.Duration) []*rules.Alert {
	t.Helper()
	storage := promqltest.LoadedStorage(t, "load 1m\n  "+strings.Join(series, "\n  "))
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: time.Minute})
	t.Cleanup(func() { _ = engine.Close() })
	expr, err := newParser().ParseExpr(rule.Expr)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	ar := rules.NewAlertingRule(rule.Alert, expr, time.Duration(rule.For), time.Duration(rule.KeepFiringFor),
		labels.FromMap(rule.Labels), labels.FromMap(rule.Annotations), labels.EmptyLabels(), "", true, logger)
	query := rules.EngineQueryFunc(engine, storage)
	start := time.Unix(0, 0).UTC()
	for ts := time.Duration(0); ts <= at; ts += evalInterval {
		if _, err := ar.Eval(context.Background(), 0, start.Add(ts), query, nil, 0); err != nil {
			t.Fatalf("evaluating at %v: %v", ts, err)
		}
	}
	var firing []*rules.Alert
	for _, a := range ar.ActiveAlerts() {
		if a.State == rules.StateFiring {
			firing = append(firing, a)
		}
	}
	return firing
}

// renderedAlerts renders the chart and returns its alerting rules by name.
func renderedAlerts(t *testing.T) map[string]rulefmt.Rule {
	t.Helper()
	r := renderForTest(t)
	alerts := map[string]rulefmt.Rule{}
	for _, s := range r.rules {
		groups, errs := parseRules(s)
		for _, err := range errs {
			t.Error(err)
		}
		for _, g := range groups {
			for _, rule := range g.Rules {
				if rule.Alert == "" {
					continue
				}
				if _, dup := alerts[rule.Alert]; dup {
					t.Errorf("alert %s is defined twice", rule.Alert)
				}
				alerts[rule.Alert] = rule
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("the chart renders no alert")
	}
	return alerts
}
