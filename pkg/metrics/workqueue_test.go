package metrics

import (
	"math"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"
)

// TestWorkqueueMetrics drives a real rate-limiting queue through Add, Get,
// Done and AddRateLimited and checks what a scrape shows. A fake clock
// makes the latencies exact; a zero-delay rate limiter makes AddRateLimited
// re-add at once (still counted as a retry), so nothing waits on timers.
func TestWorkqueueMetrics(t *testing.T) {
	r := NewRegistry()
	clk := testingclock.NewFakeClock(time.Unix(1_000_000, 0))
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](0, 0),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "test", MetricsProvider: r.WorkqueueMetricsProvider(), Clock: clk})
	defer q.ShutDown()

	_, e := mustParse(t, r)
	for _, series := range []string{
		`workqueue_depth{name="test"}`, `workqueue_adds_total{name="test"}`, `workqueue_retries_total{name="test"}`,
		`workqueue_unfinished_work_seconds{name="test"}`, `workqueue_longest_running_processor_seconds{name="test"}`,
		`workqueue_queue_duration_seconds_count{name="test"}`, `workqueue_work_duration_seconds_count{name="test"}`,
	} {
		if got := e.value(t, series); got != 0 {
			t.Errorf("new queue: %s = %v, want 0", series, got)
		}
	}

	q.Add("a")
	q.Add("b")
	q.Add("a") // already queued: deduplicated, not counted
	_, e = mustParse(t, r)
	wantValues(t, e, map[string]float64{
		`workqueue_adds_total{name="test"}`: 2,
		`workqueue_depth{name="test"}`:      2,
	})

	clk.Step(2 * time.Millisecond)
	if k, _ := q.Get(); k != "a" { // waited 2ms
		t.Fatalf("Get = %q, want a", k)
	}
	clk.Step(30 * time.Millisecond)
	q.Done("a")           // worked 30ms
	q.AddRateLimited("a") // a retry, re-added at once
	_, e = mustParse(t, r)
	wantValues(t, e, map[string]float64{
		`workqueue_adds_total{name="test"}`:    3,
		`workqueue_retries_total{name="test"}`: 1,
		`workqueue_depth{name="test"}`:         2,
	})

	for _, want := range []string{"b", "a"} { // b waited 32ms, a 0; both worked 0
		if k, _ := q.Get(); k != want {
			t.Fatalf("Get = %q, want %q", k, want)
		}
		q.Done(want)
	}
	_, e = mustParse(t, r)
	wantValues(t, e, map[string]float64{
		`workqueue_adds_total{name="test"}`:                               3,
		`workqueue_retries_total{name="test"}`:                            1,
		`workqueue_depth{name="test"}`:                                    0,
		`workqueue_queue_duration_seconds_bucket{name="test",le="1e-08"}`: 1,
		`workqueue_queue_duration_seconds_bucket{name="test",le="0.001"}`: 1,
		`workqueue_queue_duration_seconds_bucket{name="test",le="0.01"}`:  2,
		`workqueue_queue_duration_seconds_bucket{name="test",le="0.1"}`:   3,
		`workqueue_queue_duration_seconds_bucket{name="test",le="10"}`:    3,
		`workqueue_queue_duration_seconds_bucket{name="test",le="+Inf"}`:  3,
		`workqueue_queue_duration_seconds_count{name="test"}`:             3,
		`workqueue_work_duration_seconds_bucket{name="test",le="1e-08"}`:  2,
		`workqueue_work_duration_seconds_bucket{name="test",le="0.01"}`:   2,
		`workqueue_work_duration_seconds_bucket{name="test",le="0.1"}`:    3,
		`workqueue_work_duration_seconds_count{name="test"}`:              3,
	})
	if got := e.value(t, `workqueue_queue_duration_seconds_sum{name="test"}`); math.Abs(got-0.034) > 1e-12 {
		t.Errorf("queue duration sum = %v, want 0.034", got)
	}
	if got := e.value(t, `workqueue_work_duration_seconds_sum{name="test"}`); math.Abs(got-0.03) > 1e-12 {
		t.Errorf("work duration sum = %v, want 0.03", got)
	}
	for _, name := range []string{"workqueue_depth", "workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds"} {
		if e.types[name] != "gauge" {
			t.Errorf("%s has type %q, want gauge", name, e.types[name])
		}
	}
	for _, name := range []string{"workqueue_adds_total", "workqueue_retries_total"} {
		if e.types[name] != "counter" {
			t.Errorf("%s has type %q, want counter", name, e.types[name])
		}
	}
}

// TestWorkqueueBuckets checks the latency bounds are exact powers of ten
// from 1e-8 to 10, so the le labels read as kube-controller-manager's do.
func TestWorkqueueBuckets(t *testing.T) {
	var got []string
	for _, b := range workqueueBuckets() {
		got = append(got, formatFloat(b))
	}
	want := []string{"1e-08", "1e-07", "1e-06", "1e-05", "0.0001", "0.001", "0.01", "0.1", "1", "10"}
	if len(got) != len(want) {
		t.Fatalf("buckets = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("buckets = %q, want %q", got, want)
		}
	}
}

// TestWorkqueueMetricsProviderIsShared checks repeated calls return one
// provider, so two queues do not try to register the families twice, and
// that each queue gets its own series.
func TestWorkqueueMetricsProviderIsShared(t *testing.T) {
	r := NewRegistry()
	p := r.WorkqueueMetricsProvider()
	if r.WorkqueueMetricsProvider() != p {
		t.Fatal("WorkqueueMetricsProvider returned a different provider")
	}
	for _, name := range []string{"one", "two"} {
		q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name, MetricsProvider: r.WorkqueueMetricsProvider()})
		q.Add(name)
		q.ShutDown()
	}
	_, e := mustParse(t, r)
	wantValues(t, e, map[string]float64{
		`workqueue_adds_total{name="one"}`: 1,
		`workqueue_adds_total{name="two"}`: 1,
	})
}

// wantValues fails the test for every series whose value differs.
func wantValues(t *testing.T, e *exposition, want map[string]float64) {
	t.Helper()
	for series, v := range want {
		if got := e.value(t, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
}
