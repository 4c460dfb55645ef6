package metrics

import (
	"context"
	"net/url"
	"time"

	clientmetrics "k8s.io/client-go/tools/metrics"
)

// restClientBuckets are kube-controller-manager's bounds for REST client
// latencies, in seconds: fine below a second where healthy requests land,
// coarse up to the 60s a slow LIST can take.
func restClientBuckets() []float64 {
	return []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60}
}

// restClientMetrics are the families behind client-go's REST client hooks,
// named and labelled as in kube-controller-manager. Every one is labelled
// by host only, never by URL: URLs carry namespaces and object names, and
// one series per object would grow without bound.
type restClientMetrics struct {
	latency     *HistogramVec // verb, host
	rateLimiter *HistogramVec // verb, host
	results     *CounterVec   // code, method, host
	retries     *CounterVec   // code, method, host
}

// newRestClientMetrics registers the rest_client_* families in r.
func newRestClientMetrics(r *Registry) *restClientMetrics {
	return &restClientMetrics{
		latency: r.NewHistogramVec("rest_client_request_duration_seconds",
			"Request latency in seconds. Broken down by verb, and host.", restClientBuckets(), "verb", "host"),
		rateLimiter: r.NewHistogramVec("rest_client_rate_limiter_duration_seconds",
			"Client side rate limiter latency in seconds. Broken down by verb, and host.", restClientBuckets(), "verb", "host"),
		results: r.NewCounterVec("rest_client_requests_total",
			"Number of HTTP requests, partitioned by status code, method, and host.", "code", "method", "host"),
		retries: r.NewCounterVec("rest_client_request_retries_total",
			"Number of request retries, partitioned by status code, method, and host.", "code", "method", "host"),
	}
}

// RegisterClientGoMetrics registers rest_client_request_duration_seconds,
// rest_client_rate_limiter_duration_seconds, rest_client_requests_total and
// rest_client_request_retries_total, and installs adapters for them in
// k8s.io/client-go/tools/metrics, so every REST client of the process
// records into this registry.
//
// client-go keeps those hooks in package globals and accepts only the first
// registration of the process (a sync.Once), so call this once, from main,
// before building clients; a later call, from any registry, still registers
// the families here but client-go keeps feeding the first. Calling it twice
// on one registry panics, like any duplicate registration.
func (r *Registry) RegisterClientGoMetrics() {
	m := newRestClientMetrics(r)
	r.mu.Lock()
	r.restClientResults = resultAdapter{m.results}
	r.mu.Unlock()
	clientmetrics.Register(clientmetrics.RegisterOpts{
		RequestLatency:     latencyAdapter{m.latency},
		RateLimiterLatency: latencyAdapter{m.rateLimiter},
		RequestResult:      resultAdapter{m.results},
		RequestRetry:       retryAdapter{m.retries},
	})
}

// The adapters must keep satisfying client-go's interfaces.
var (
	_ clientmetrics.LatencyMetric = latencyAdapter{}
	_ clientmetrics.ResultMetric  = resultAdapter{}
	_ clientmetrics.RetryMetric   = retryAdapter{}
)

// latencyAdapter implements clientmetrics.LatencyMetric for both request
// and client-side rate limiter latency.
type latencyAdapter struct{ h *HistogramVec }

// Observe implements clientmetrics.LatencyMetric, keeping only the URL's
// host: the path names objects, which would be unbounded cardinality.
func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	a.h.WithLabelValues(verb, hostLabel(u.Host)).Observe(latency.Seconds())
}

// resultAdapter implements clientmetrics.ResultMetric.
type resultAdapter struct{ c *CounterVec }

// Increment implements clientmetrics.ResultMetric. code is the HTTP status,
// or "<error>" when no response came back.
func (a resultAdapter) Increment(_ context.Context, code, method, host string) {
	a.c.WithLabelValues(code, method, hostLabel(host)).Inc()
}

// retryAdapter implements clientmetrics.RetryMetric.
type retryAdapter struct{ c *CounterVec }

// IncrementRetry implements clientmetrics.RetryMetric.
func (a retryAdapter) IncrementRetry(_ context.Context, code, method, host string) {
	a.c.WithLabelValues(code, method, hostLabel(host)).Inc()
}

// hostLabel returns host, or "none" when it is empty, which is what
// client-go itself reports for a client without a base URL.
func hostLabel(host string) string {
	if host == "" {
		return "none"
	}
	return host
}
