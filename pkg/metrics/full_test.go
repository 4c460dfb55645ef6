package metrics

import (
	"context"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// TestFullRegistryIsValid builds the registry a binary would have, with
// every metric kind, awkward label values and values, the workqueue,
// client-go and process metrics, exercises all of it, and runs the strict
// checker over the scrape.
func TestFullRegistryIsValid(t *testing.T) {
	r := NewRegistry()
	ctx := context.Background()

	syncs := r.NewCounterVec("reroll_syncs_total", "Syncs by result.\nA second line, with a \\.", "result", "namespace")
	for _, lv := range [][]string{
		{"success", "default"},
		{"error", `a "quoted" \ value` + "\nwith a newline"},
		{"error", "bad utf-8 \xc3\x28"},
		{"", ""},
		{"success", "ünïcödé ✓"},
	} {
		syncs.WithLabelValues(lv...).Add(2)
	}
	syncs.WithLabelValues("huge", "x").Add(math.MaxFloat64)
	g := r.NewGaugeVec("reroll_gauge", "Gauges of every sign.", "case")
	g.WithLabelValues("neg").Set(-1.5)
	g.WithLabelValues("nan").Set(math.NaN())
	g.WithLabelValues("inf").Set(math.Inf(1))
	g.WithLabelValues("-inf").Set(math.Inf(-1))
	g.WithLabelValues("tiny").Set(5e-324)
	h := r.NewHistogramVec("reroll_sync_duration_seconds", "Sync latency.", []float64{0.001, 0.01, 0.1, 1, 10}, "kind")
	for i := range 100 {
		h.WithLabelValues("Deployment").Observe(float64(i) / 10)
	}
	h.WithLabelValues("DaemonSet").Observe(math.NaN())
	h.WithLabelValues("StatefulSet") // created, never observed
	r.NewHistogramVec("reroll_empty_seconds", "A histogram without series.", []float64{1})
	r.NewGaugeFunc("reroll_func_gauge", "Scrape-time gauge.", func() float64 { return 42 })
	r.NewCounterFunc("reroll_func_total", "Scrape-time counter.", func() float64 { return 7 })
	r.NewGaugeVecFunc("reroll_cached_objects", "Cached objects by kind.", []string{"kind"}, func(emit func(float64, ...string)) {
		emit(3, "Secret")
		emit(5, "ConfigMap")
		emit(0, `we"ird`)
	})

	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](0, 0),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "reroll", MetricsProvider: r.WorkqueueMetricsProvider()})
	defer q.ShutDown()
	q.Add("ns/a")
	q.Add("ns/b")
	k, _ := q.Get()
	q.AddRateLimited(k)
	q.Done(k)

	// The families RegisterClientGoMetrics registers, fed directly: client-go
	// takes only one registration per process, which another test uses.
	m := newRestClientMetrics(r)
	u := url.URL{Scheme: "https", Host: "kubernetes.default.svc:443", Path: "/apis/apps/v1/namespaces/ns/deployments/d"}
	latencyAdapter{m.latency}.Observe(ctx, "PATCH", u, 20*time.Millisecond)
	latencyAdapter{m.rateLimiter}.Observe(ctx, "PATCH", u, time.Microsecond)
	resultAdapter{m.results}.Increment(ctx, "200", "PATCH", u.Host)
	resultAdapter{m.results}.Increment(ctx, "<error>", "GET", u.Host)
	retryAdapter{m.retries}.IncrementRetry(ctx, "503", "GET", u.Host)

	r.RegisterProcessMetrics()

	text, e := mustParse(t, r)
	for _, family := range []string{
		"reroll_syncs_total", "reroll_gauge", "reroll_sync_duration_seconds", "reroll_empty_seconds",
		"reroll_func_gauge", "reroll_func_total", "reroll_cached_objects",
		"workqueue_depth", "workqueue_adds_total", "workqueue_queue_duration_seconds", "workqueue_work_duration_seconds",
		"workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds", "workqueue_retries_total",
		"rest_client_request_duration_seconds", "rest_client_rate_limiter_duration_seconds",
		"rest_client_requests_total", "rest_client_request_retries_total",
		"go_goroutines", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
	} {
		if _, ok := e.types[family]; !ok {
			t.Errorf("family %s missing", family)
		}
	}
	wantValues(t, e, map[string]float64{
		`reroll_syncs_total{result="error",namespace="a \"quoted\" \\ value\nwith a newline"}`:    2,
		`reroll_syncs_total{result="error",namespace="bad utf-8 ` + "\uFFFD(" + `"}`:              2,
		`reroll_syncs_total{result="",namespace=""}`:                                              2,
		`reroll_sync_duration_seconds_bucket{kind="Deployment",le="1"}`:                           11,
		`reroll_sync_duration_seconds_count{kind="Deployment"}`:                                   100,
		`reroll_sync_duration_seconds_bucket{kind="DaemonSet",le="+Inf"}`:                         1,
		`reroll_sync_duration_seconds_count{kind="StatefulSet"}`:                                  0,
		`workqueue_adds_total{name="reroll"}`:                                                     3,
		`workqueue_retries_total{name="reroll"}`:                                                  1,
		`workqueue_depth{name="reroll"}`:                                                          2,
		`rest_client_requests_total{code="200",method="PATCH",host="kubernetes.default.svc:443"}`: 1,
	})
	if strings.Contains(text, "deployments/d") {
		t.Error("a URL path leaked into the labels")
	}
	if !strings.Contains(text, "# TYPE reroll_empty_seconds histogram\n# HELP reroll_func_gauge") {
		t.Error("a family without series should show only its HELP and TYPE lines")
	}
}
