package metrics

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestWriteTextGolden pins the exact exposition of every metric kind:
// HELP escaping, label escaping, family and series order, histogram layout
// and le formatting, and an empty family that shows only HELP and TYPE.
func TestWriteTextGolden(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounterVec("reroll_syncs_total", "Syncs by result.\nSecond line with a \\ backslash.", "result", "kind")
	c.WithLabelValues("success", "Deployment").Add(3)
	c.WithLabelValues("error", "Deployment").Inc()
	c.WithLabelValues(`quote " back \ new`+"\nline", "x").Inc()
	g := r.NewGaugeVec("reroll_up", "Whether it is up.")
	g.WithLabelValues().Set(1)
	h := r.NewHistogramVec("reroll_sync_duration_seconds", "Sync latency.", []float64{0.005, 1, 2.5}, "kind")
	h.WithLabelValues("StatefulSet").Observe(0.005) // on a bound: le is inclusive
	h.WithLabelValues("StatefulSet").Observe(2)
	h.WithLabelValues("StatefulSet").Observe(100)
	h.WithLabelValues("Deployment").Observe(0.001)
	r.NewGaugeVec("a_empty", "No series yet.", "x")
	r.NewGaugeFunc("reroll_build_info_ratio", "A scrape-time gauge.", func() float64 { return 0.25 })
	r.NewCounterFunc("reroll_func_total", "A scrape-time counter.", func() float64 { return 1e21 })
	r.NewGaugeVecFunc("reroll_cached_objects", "Objects cached, by kind.", []string{"kind"}, func(emit func(float64, ...string)) {
		emit(7, "Secret")
		emit(3, "ConfigMap")
	})

	text, _ := mustParse(t, r)
	want := `# HELP a_empty No series yet.
# TYPE a_empty gauge
# HELP reroll_build_info_ratio A scrape-time gauge.
# TYPE reroll_build_info_ratio gauge
reroll_build_info_ratio 0.25
# HELP reroll_cached_objects Objects cached, by kind.
# TYPE reroll_cached_objects gauge
reroll_cached_objects{kind="ConfigMap"} 3
reroll_cached_objects{kind="Secret"} 7
# HELP reroll_func_total A scrape-time counter.
# TYPE reroll_func_total counter
reroll_func_total 1e+21
# HELP reroll_sync_duration_seconds Sync latency.
# TYPE reroll_sync_duration_seconds histogram
reroll_sync_duration_seconds_bucket{kind="Deployment",le="0.005"} 1
reroll_sync_duration_seconds_bucket{kind="Deployment",le="1"} 1
reroll_sync_duration_seconds_bucket{kind="Deployment",le="2.5"} 1
reroll_sync_duration_seconds_bucket{kind="Deployment",le="+Inf"} 1
reroll_sync_duration_seconds_sum{kind="Deployment"} 0.001
reroll_sync_duration_seconds_count{kind="Deployment"} 1
reroll_sync_duration_seconds_bucket{kind="StatefulSet",le="0.005"} 1
reroll_sync_duration_seconds_bucket{kind="StatefulSet",le="1"} 1
reroll_sync_duration_seconds_bucket{kind="StatefulSet",le="2.5"} 2
reroll_sync_duration_seconds_bucket{kind="StatefulSet",le="+Inf"} 3
reroll_sync_duration_seconds_sum{kind="StatefulSet"} 102.005
reroll_sync_duration_seconds_count{kind="StatefulSet"} 3
# HELP reroll_syncs_total Syncs by result.\nSecond line with a \\ backslash.
# TYPE reroll_syncs_total counter
reroll_syncs_total{result="error",kind="Deployment"} 1
reroll_syncs_total{result="quote \" back \\ new\nline",kind="x"} 1
reroll_syncs_total{result="success",kind="Deployment"} 3
# HELP reroll_up Whether it is up.
# TYPE reroll_up gauge
reroll_up 1
`
	if text != want {
		t.Errorf("WriteText mismatch\n--- got ---\n%s\n--- want ---\n%s", text, want)
	}
}

// TestAppendFloat checks values are written the way Prometheus parses
// them, and that each parses back to the same float64.
func TestAppendFloat(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {1, "1"}, {-1, "-1"}, {2.5, "2.5"}, {0.005, "0.005"}, {1e-08, "1e-08"},
		{10, "10"}, {1234567, "1.234567e+06"}, {0.30000000000000004, "0.30000000000000004"},
		{math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"}, {math.NaN(), "NaN"},
		{math.MaxFloat64, "1.7976931348623157e+308"}, {math.SmallestNonzeroFloat64, "5e-324"},
	} {
		got := formatFloat(tc.in)
		if got != tc.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tc.in, got, tc.want)
		}
		back, err := parseValue(got)
		if err != nil || (back != tc.in && !(math.IsNaN(back) && math.IsNaN(tc.in))) {
			t.Errorf("parseValue(%q) = %v, %v; want %v", got, back, err, tc.in)
		}
	}
}

// TestInvalidUTF8LabelValue checks invalid bytes are replaced rather than
// breaking the exposition, and that the caller's slice is left alone.
func TestInvalidUTF8LabelValue(t *testing.T) {
	r := NewRegistry()
	v := r.NewGaugeVec("g", "h", "l")
	vals := []string{"a\xffb"}
	v.WithLabelValues(vals...).Set(1)
	if vals[0] != "a\xffb" {
		t.Errorf("caller's label values were modified: %q", vals)
	}
	_, e := mustParse(t, r)
	if got := e.value(t, `g{l="a`+"\uFFFD"+`b"}`); got != 1 {
		t.Errorf("g = %v, want 1", got)
	}
}

// mustPanic runs f and fails unless it panics with a message containing
// want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		msg, _ := r.(string)
		if r == nil || !strings.Contains(msg, want) {
			t.Errorf("panic = %v, want one containing %q", r, want)
		}
	}()
	f()
}

// TestRegistrationPanics checks every declaration mistake panics with a
// message that says what is wrong.
func TestRegistrationPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string
		f    func(r *Registry)
	}{
		{"duplicate", `"x" is already registered`, func(r *Registry) { r.NewGaugeVec("x", "h"); r.NewCounterVec("x", "h") }},
		{"duplicate func", `"x" is already registered`, func(r *Registry) { r.NewGaugeFunc("x", "h", nil); r.NewGaugeFunc("x", "h", nil) }},
		{"counter after histogram", `collides with metric "x"`, func(r *Registry) {
			r.NewHistogramVec("x", "h", []float64{1})
			r.NewCounterVec("x_count", "h")
		}},
		{"histogram after gauge", `sample name "x_sum" collides with metric "x_sum"`, func(r *Registry) {
			r.NewGaugeVec("x_sum", "h")
			r.NewHistogramVec("x", "h", nil)
		}},
		{"empty name", "invalid metric name", func(r *Registry) { r.NewGaugeVec("", "h") }},
		{"name starts with digit", "invalid metric name", func(r *Registry) { r.NewGaugeVec("1x", "h") }},
		{"name with dash", "invalid metric name", func(r *Registry) { r.NewCounterVec("a-b", "h") }},
		{"empty help", "has no help text", func(r *Registry) { r.NewGaugeVec("x", "") }},
		{"label with colon", "invalid label name", func(r *Registry) { r.NewGaugeVec("x", "h", "a:b") }},
		{"empty label", "invalid label name", func(r *Registry) { r.NewGaugeVec("x", "h", "") }},
		{"reserved label", "reserved", func(r *Registry) { r.NewGaugeVec("x", "h", "__name") }},
		{"le on histogram", `"le" is reserved`, func(r *Registry) { r.NewHistogramVec("x", "h", nil, "le") }},
		{"duplicate label", "duplicate label name", func(r *Registry) { r.NewGaugeVec("x", "h", "a", "a") }},
		{"unsorted buckets", "strictly increasing", func(r *Registry) { r.NewHistogramVec("x", "h", []float64{1, 0.5}) }},
		{"repeated bucket", "strictly increasing", func(r *Registry) { r.NewHistogramVec("x", "h", []float64{1, 1}) }},
		{"NaN bucket", "not NaN", func(r *Registry) { r.NewHistogramVec("x", "h", []float64{math.NaN()}) }},
		{"+Inf not last", "+Inf only last", func(r *Registry) { r.NewHistogramVec("x", "h", []float64{1, math.Inf(1), math.Inf(1)}) }},
		{"too few label values", `has 2 label names ["a" "b"] but got 1 label values ["x"]`, func(r *Registry) {
			r.NewCounterVec("x", "h", "a", "b").WithLabelValues("x")
		}},
		{"too many label values", "has 0 label names", func(r *Registry) { r.NewGaugeVec("x", "h").WithLabelValues("x") }},
		{"histogram label values", "has 1 label names", func(r *Registry) { r.NewHistogramVec("x", "h", nil, "a").WithLabelValues() }},
		{"negative counter add", "counter cannot be increased by -1", func(r *Registry) { r.NewCounterVec("x", "h").WithLabelValues().Add(-1) }},
		{"NaN counter add", "counter cannot be increased by NaN", func(r *Registry) { r.NewCounterVec("x", "h").WithLabelValues().Add(math.NaN()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustPanic(t, tc.want, func() { tc.f(NewRegistry()) })
		})
	}
}

// TestFailedRegistrationLeavesRegistryUsable checks a panicking
// registration neither half-registers its family nor holds the lock.
func TestFailedRegistrationLeavesRegistryUsable(t *testing.T) {
	r := NewRegistry()
	r.NewGaugeVec("x", "h")
	mustPanic(t, "already registered", func() { r.NewGaugeVec("x", "h") })
	mustPanic(t, "collides", func() { r.NewHistogramVec("y", "h", nil); r.NewGaugeVec("y_bucket", "h") })
	r.NewGaugeVec("z", "h")
	text, _ := mustParse(t, r)
	if strings.Count(text, "# TYPE") != 3 {
		t.Errorf("want 3 families, got:\n%s", text)
	}
}

// TestHistogramBuckets checks le is inclusive, NaN and values above every
// bound only reach +Inf, a trailing +Inf bucket is implicit, and the
// caller's bucket slice is copied.
func TestHistogramBuckets(t *testing.T) {
	r := NewRegistry()
	buckets := []float64{-1, 0, 1, math.Inf(1)}
	h := r.NewHistogramVec("h", "h", buckets).WithLabelValues()
	buckets[0] = 5 // must not affect the registered histogram
	for _, v := range []float64{-2, -1, 0, 0.5, 1, 1.5, math.Inf(1), math.NaN()} {
		h.Observe(v)
	}
	text, e := mustParse(t, r)
	for series, want := range map[string]float64{
		`h_bucket{le="-1"}`:   2,
		`h_bucket{le="0"}`:    3,
		`h_bucket{le="1"}`:    5,
		`h_bucket{le="+Inf"}`: 8,
		`h_count`:             8,
	} {
		if got := e.value(t, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if !math.IsNaN(e.value(t, "h_sum")) {
		t.Errorf("h_sum should be NaN after a NaN observation")
	}
	if strings.Count(text, `le="+Inf"`) != 1 {
		t.Errorf("want exactly one +Inf bucket:\n%s", text)
	}
}

// TestEmptyHistogramBuckets checks a histogram without bounds still has a
// +Inf bucket, a sum and a count.
func TestEmptyHistogramBuckets(t *testing.T) {
	r := NewRegistry()
	r.NewHistogramVec("h", "h", nil, "a").WithLabelValues("x").Observe(3)
	_, e := mustParse(t, r)
	if e.value(t, `h_bucket{a="x",le="+Inf"}`) != 1 || e.value(t, `h_sum{a="x"}`) != 3 {
		t.Errorf("unexpected values: %v", e.values)
	}
}

// TestGauge checks Set, Inc, Dec and Add.
func TestGauge(t *testing.T) {
	r := NewRegistry()
	g := r.NewGaugeVec("g", "h", "a").WithLabelValues("x")
	g.Set(10)
	g.Inc()
	g.Dec()
	g.Dec()
	g.Add(-19.5)
	_, e := mustParse(t, r)
	if got := e.value(t, `g{a="x"}`); got != -10.5 {
		t.Errorf("g = %v, want -10.5", got)
	}
	if r.NewGaugeVec("g2", "h").WithLabelValues() == nil {
		t.Error("nil gauge")
	}
}

// TestWithLabelValuesReturnsSameSeries checks lookups are stable, so
// callers may keep the returned metric.
func TestWithLabelValuesReturnsSameSeries(t *testing.T) {
	r := NewRegistry()
	v := r.NewCounterVec("c_total", "h", "a", "b")
	first := v.WithLabelValues("x", "y")
	first.Inc()
	if again := v.WithLabelValues(strings.Clone("x"), "y"); again != first {
		t.Error("same label values gave different counters")
	}
	// The separator must keep these apart, including once invalid UTF-8
	// has been replaced.
	distinct := [][]string{{"xy", ""}, {"x", "y"}, {"", "xy"}, {"x\xff", "y"}, {"x", "\xffy"}}
	seen := map[*Counter][]string{}
	for _, lv := range distinct {
		c := v.WithLabelValues(lv...)
		if prev, ok := seen[c]; ok {
			t.Errorf("label values %q and %q share a counter", prev, lv)
		}
		seen[c] = lv
	}
}

// TestFuncFamilyErrors checks a scrape-time callback that would make the
// exposition invalid fails the scrape, writes nothing, and makes Handler
// answer 500.
func TestFuncFamilyErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string
		reg  func(r *Registry)
	}{
		{"wrong label count", `"v" has 1 label names ["kind"] but got 2 label values`, func(r *Registry) {
			r.NewGaugeVecFunc("v", "h", []string{"kind"}, func(emit func(float64, ...string)) { emit(1, "a", "b") })
		}},
		{"duplicate series", `label values ["a"] emitted twice`, func(r *Registry) {
			r.NewGaugeVecFunc("v", "h", []string{"kind"}, func(emit func(float64, ...string)) { emit(1, "a"); emit(2, "a") })
		}},
		{"negative counter", "counters cannot be negative", func(r *Registry) {
			r.NewCounterFunc("v_total", "h", func() float64 { return -1 })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry()
			r.NewGaugeVec("a_first", "h").WithLabelValues().Set(1)
			tc.reg(r)
			var b strings.Builder
			err := r.WriteText(&b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("WriteText error = %v, want one containing %q", err, tc.want)
			}
			if b.Len() != 0 {
				t.Errorf("WriteText wrote a partial exposition:\n%s", b.String())
			}
			rec := httptest.NewRecorder()
			r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("Handler status = %d, want 500", rec.Code)
			}
		})
	}
}

// TestGaugeVecFuncOmitsUnemitted checks a labelled scrape-time family shows
// exactly what the callback emitted at this scrape.
func TestGaugeVecFuncOmitsUnemitted(t *testing.T) {
	r := NewRegistry()
	kinds := []string{"a", "b"}
	r.NewGaugeVecFunc("v", "h", []string{"kind"}, func(emit func(float64, ...string)) {
		for i, k := range kinds {
			emit(float64(i), k)
		}
	})
	_, e := mustParse(t, r)
	if len(e.values) != 2 {
		t.Fatalf("want 2 series, got %v", e.values)
	}
	kinds = kinds[:1]
	_, e = mustParse(t, r)
	if len(e.values) != 1 {
		t.Fatalf("want 1 series, got %v", e.values)
	}
}

// TestHandler checks the content type, that the body is WriteText's output,
// HEAD, and that other methods are refused.
func TestHandler(t *testing.T) {
	r := NewRegistry()
	r.NewCounterVec("c_total", "h").WithLabelValues().Inc()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	want, _ := mustParse(t, r)
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Errorf("GET = %d %q, want 200 %q", resp.StatusCode, string(body), want)
	}

	resp, err = http.Head(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ContentType {
		t.Errorf("HEAD = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	resp, err = http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d, Allow %q; want 405", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestEmptyRegistry checks an empty registry writes nothing.
func TestEmptyRegistry(t *testing.T) {
	if text, _ := mustParse(t, NewRegistry()); text != "" {
		t.Errorf("got %q", text)
	}
}

// TestConcurrentUse hammers every metric kind, series creation and
// registration from many goroutines while scraping, for the race detector;
// every scrape must be valid and the totals exact.
func TestConcurrentUse(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounterVec("c_total", "h", "worker")
	g := r.NewGaugeVec("g", "h")
	h := r.NewHistogramVec("h", "h", []float64{0.5, 1}, "worker")
	const workers, iterations = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		id := string(rune('a' + w))
		wg.Go(func() {
			for i := range iterations {
				c.WithLabelValues(id).Inc()
				c.WithLabelValues("shared").Add(0.5)
				g.WithLabelValues().Inc()
				h.WithLabelValues(id).Observe(float64(i%3) / 2)
			}
		})
	}
	wg.Go(func() { // registration concurrent with scrapes
		for i := range 50 {
			r.NewGaugeFunc("f_"+string(rune('a'+i%26))+string(rune('a'+i/26)), "h", func() float64 { return float64(i) })
		}
	})
	stop := make(chan struct{})
	scrapeErr := make(chan error, 1)
	go func() {
		defer close(scrapeErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var b strings.Builder
			if err := r.WriteText(&b); err != nil {
				scrapeErr <- err
				return
			}
			if _, err := parseExposition(b.String()); err != nil {
				scrapeErr <- err
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-scrapeErr; err != nil {
		t.Fatalf("scrape during concurrent use: %v", err)
	}

	_, e := mustParse(t, r)
	if got := e.value(t, `c_total{worker="shared"}`); got != workers*iterations*0.5 {
		t.Errorf("shared counter = %v, want %v", got, workers*iterations*0.5)
	}
	if got := e.value(t, `c_total{worker="a"}`); got != iterations {
		t.Errorf("worker counter = %v, want %v", got, iterations)
	}
	if got := e.value(t, "g"); got != workers*iterations {
		t.Errorf("gauge = %v, want %v", got, workers*iterations)
	}
	if got := e.value(t, `h_count{worker="h"}`); got != iterations {
		t.Errorf("histogram count = %v, want %v", got, iterations)
	}
}

// TestDeterministicOrder checks series come out sorted by label values
// whatever the creation order, and that repeated scrapes are identical.
func TestDeterministicOrder(t *testing.T) {
	r := NewRegistry()
	v := r.NewGaugeVec("g", "h", "a", "b")
	for _, lv := range [][]string{{"b", "a"}, {"a", "z"}, {"a", "b"}, {"", "z"}} {
		v.WithLabelValues(lv...).Set(1)
	}
	text, _ := mustParse(t, r)
	want := "# HELP g h\n# TYPE g gauge\n" +
		"g{a=\"\",b=\"z\"} 1\ng{a=\"a\",b=\"b\"} 1\ng{a=\"a\",b=\"z\"} 1\ng{a=\"b\",b=\"a\"} 1\n"
	if text != want {
		t.Errorf("got\n%s\nwant\n%s", text, want)
	}
	for range 5 {
		if again, _ := mustParse(t, r); again != text {
			t.Fatalf("scrapes differ:\n%s\n%s", text, again)
		}
	}
}
