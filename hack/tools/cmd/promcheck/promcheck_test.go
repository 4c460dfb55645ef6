package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// renderForTest renders the repository's chart as the command does.
func renderForTest(t *testing.T) rendered {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	helm, err := helmCommand("", chartDir(root))
	if err != nil {
		t.Fatal(err)
	}
	r, err := renderChart(chartDir(root), helm, checkValues())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOffByDefault: with the chart's default values, neither the dashboard
// nor the PrometheusRule is rendered.
func TestOffByDefault(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	helm, err := helmCommand("", chartDir(root))
	if err != nil {
		t.Fatal(err)
	}
	r, err := renderChart(chartDir(root), helm, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.dashboards) != 0 || len(r.rules) != 0 {
		t.Errorf("default values render %d dashboards and %d PrometheusRules; want none", len(r.dashboards), len(r.rules))
	}
}

// TestEveryExpressionParses: every expression of the chart's dashboard and
// rules parses with Prometheus' parser, selects metrics by exact name, and
// the rule groups load as Prometheus loads a rules file.
func TestEveryExpressionParses(t *testing.T) {
	r := renderForTest(t)
	exprs, errs := allExprs(r)
	for _, err := range errs {
		t.Error(err)
	}
	p := newParser()
	for _, e := range exprs {
		names, err := exprMetricNames(p, e.text)
		if err != nil {
			t.Errorf("%s: %v\n%s", e.where, err, e.text)
		} else if len(names) == 0 {
			t.Errorf("%s selects no metric: %s", e.where, e.text)
		}
	}
	if len(exprs) < 20 {
		t.Errorf("found %d expressions; the dashboard and the rules have more", len(exprs))
	}
}

// TestDashboardShowsWhatOperatorsNeed: the dashboard queries the metrics of
// each thing docs/observability.md says it shows.
func TestDashboardShowsWhatOperatorsNeed(t *testing.T) {
	r := renderForTest(t)
	r.rules = nil
	var used []string
	p := newParser()
	for _, d := range r.dashboards {
		exprs, err := dashboardExprs(d.name, d.content)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exprs {
			names, _ := exprMetricNames(p, e.text)
			used = append(used, names...)
		}
	}
	for _, want := range []string{
		"reroll_rollouts_total", "reroll_rollouts_skipped_total", "reroll_rollouts_held", "reroll_rollouts_inflight",
		"reroll_rollouts_baking", "reroll_bake_failures_total", "reroll_pod_watches",
		"reroll_sync_duration_seconds_bucket", "reroll_sync_errors_total",
		"workqueue_depth", "workqueue_queue_duration_seconds_bucket", "workqueue_longest_running_processor_seconds",
		"reroll_events_dropped_total", "reroll_warnings_total", "reroll_leader",
		"process_resident_memory_bytes", "process_cpu_seconds_total", "reroll_cached_objects",
		"rest_client_requests_total", "rest_client_request_duration_seconds_bucket",
	} {
		if !slices.Contains(used, want) {
			t.Errorf("the dashboard does not query %s", want)
		}
	}
}

// TestRunbooks: each alert has a summary, a description and a runbook_url
// pointing at a section of docs/alerts.md named after it, and each section
// of docs/alerts.md is an alert's.
func TestRunbooks(t *testing.T) {
	alerts := renderedAlerts(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)$`).FindAllSubmatch(doc, -1) {
		sections[string(m[1])] = true
	}
	for name, rule := range alerts {
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(rule.Annotations[a]) == "" {
				t.Errorf("%s has no %s", name, a)
			}
		}
		if want := "docs/alerts.md#" + strings.ToLower(name); !strings.HasSuffix(rule.Annotations["runbook_url"], want) {
			t.Errorf("%s: runbook_url %q does not end in %s", name, rule.Annotations["runbook_url"], want)
		}
		if !sections[name] {
			t.Errorf("docs/alerts.md has no section ## %s", name)
		}
		if _, ok := rule.Labels["severity"]; !ok {
			t.Errorf("%s has no severity label", name)
		}
	}
	for s := range sections {
		if _, ok := alerts[s]; !ok {
			t.Errorf("docs/alerts.md has a section ## %s, but the chart has no such alert", s)
		}
	}
}

// TestExprMetricNames: every selector's metric name is found, including
// ones in ranges, subqueries, offsets and by __name__; a selector without
// an exact name is an error.
func TestExprMetricNames(t *testing.T) {
	p := newParser()
	got, err := exprMetricNames(p, `sum by (le) (rate(a_bucket{x="$v"}[5m])) / on () b offset 1h + max_over_time(c[10m:1m]) and {__name__="d", y="1"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a_bucket", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := exprMetricNames(p, `{__name__=~"reroll_.*"}`); err == nil {
		t.Error("a selector by regular expression: no error")
	}
	if _, err := exprMetricNames(p, `rate(a[$__rate_interval])`); err == nil {
		t.Error("a Grafana variable as a range: no error from the parser")
	}
}

// TestGrafanaVariables: the range variables become durations, label
// values stay, and query variables give their selector.
func TestGrafanaVariables(t *testing.T) {
	if got, want := grafanaToPromQL(`rate(a{ns="$namespace"}[$__rate_interval]) + rate(b[${__interval}])`), `rate(a{ns="$namespace"}[1m]) + rate(b[1m])`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for q, want := range map[string]string{
		`"label_values(reroll_leader, namespace)"`:                    "reroll_leader",
		`{"query": "label_values(up{job=\"a,b\"}, instance)"}`:        `up{job="a,b"}`,
		`"label_values(namespace)"`:                                   "",
		`{"query": "query_result(max(reroll_leader) by (instance))"}`: "max(reroll_leader) by (instance)",
	} {
		got, err := variableExpr(variable{Type: "query", Query: []byte(q)})
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", q, got, err, want)
		}
	}
	if _, err := variableExpr(variable{Type: "query", Query: []byte(`"metrics(reroll_.*)"`)}); err == nil {
		t.Error("metrics(...): no error")
	}
}

// TestRun: the command prints the metric names of the chart, sorted, once
// each, and nothing on standard error.
func TestRun(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--chart", chartDir(root)}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	names := strings.Fields(stdout.String())
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("not sorted, or not once each: %q", names)
	}
	for _, want := range []string{"reroll_leader", "reroll_rollouts_held", "workqueue_depth"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s missing from %q", want, names)
		}
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
}
