package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	clientmetrics "k8s.io/client-go/tools/metrics"
)

// TestRestClientAdapters calls the adapters the way client-go does and
// checks the series, in particular that only the host of a URL is kept.
func TestRestClientAdapters(t *testing.T) {
	r := NewRegistry()
	m := newRestClientMetrics(r)
	ctx := context.Background()
	u := url.URL{Scheme: "https", Host: "10.0.0.1:6443", Path: "/api/v1/namespaces/ns/configmaps/cm"}

	latencyAdapter{m.latency}.Observe(ctx, "GET", u, 150*time.Millisecond)
	latencyAdapter{m.latency}.Observe(ctx, "PATCH", u, 90*time.Second)
	latencyAdapter{m.rateLimiter}.Observe(ctx, "GET", u, 0)
	latencyAdapter{m.latency}.Observe(ctx, "GET", url.URL{Path: "/version"}, time.Millisecond)
	resultAdapter{m.results}.Increment(ctx, "200", "GET", "10.0.0.1:6443")
	resultAdapter{m.results}.Increment(ctx, "200", "GET", "10.0.0.1:6443")
	resultAdapter{m.results}.Increment(ctx, "<error>", "PATCH", "10.0.0.1:6443")
	retryAdapter{m.retries}.IncrementRetry(ctx, "429", "GET", "")

	text, e := mustParse(t, r)
	wantValues(t, e, map[string]float64{
		`rest_client_request_duration_seconds_bucket{verb="GET",host="10.0.0.1:6443",le="0.1"}`:        0,
		`rest_client_request_duration_seconds_bucket{verb="GET",host="10.0.0.1:6443",le="0.25"}`:       1,
		`rest_client_request_duration_seconds_bucket{verb="PATCH",host="10.0.0.1:6443",le="60"}`:       0,
		`rest_client_request_duration_seconds_bucket{verb="PATCH",host="10.0.0.1:6443",le="+Inf"}`:     1,
		`rest_client_request_duration_seconds_count{verb="GET",host="none"}`:                           1,
		`rest_client_rate_limiter_duration_seconds_bucket{verb="GET",host="10.0.0.1:6443",le="0.005"}`: 1,
		`rest_client_requests_total{code="200",method="GET",host="10.0.0.1:6443"}`:                     2,
		`rest_client_requests_total{code="<error>",method="PATCH",host="10.0.0.1:6443"}`:               1,
		`rest_client_request_retries_total{code="429",method="GET",host="none"}`:                       1,
	})
	if strings.Contains(text, "configmaps") || strings.Contains(text, "/api") {
		t.Errorf("a URL path leaked into the labels:\n%s", text)
	}
	if got := e.value(t, `rest_client_request_duration_seconds_sum{verb="GET",host="10.0.0.1:6443"}`); got != 0.15 {
		t.Errorf("latency sum = %v, want 0.15", got)
	}
}

// TestRegisterClientGoMetrics installs the adapters in client-go and makes a
// real request through a REST client, to prove client-go calls them. client-go
// accepts one registration per process, so the test skips when an earlier
// run in this process (go test -count=2) already took it.
func TestRegisterClientGoMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/version" {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
	}))
	defer srv.Close()

	r := NewRegistry()
	r.RegisterClientGoMetrics()
	if clientmetrics.RequestResult != r.restClientResults {
		t.Skip("client-go metrics were registered earlier in this process; client-go keeps the first registration")
	}

	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.ServerVersion(); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	_, e := mustParse(t, r)
	wantValues(t, e, map[string]float64{
		`rest_client_requests_total{code="200",method="GET",host="` + host + `"}`:    1,
		`rest_client_request_duration_seconds_count{verb="GET",host="` + host + `"}`: 1,
	})
}
