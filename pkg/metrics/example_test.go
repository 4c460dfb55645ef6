package metrics_test

import (
	"os"

	"github.com/reroll/reroll/pkg/metrics"
)

// ExampleRegistry_WriteText shows the exposition of a counter, a histogram
// and a scrape-time gauge.
func ExampleRegistry_WriteText() {
	reg := metrics.NewRegistry()
	syncs := reg.NewCounterVec("reroll_syncs_total", "Syncs by result.", "result")
	syncs.WithLabelValues("success").Inc()
	latency := reg.NewHistogramVec("reroll_sync_duration_seconds", "Sync latency in seconds.", []float64{0.1, 1})
	latency.WithLabelValues().Observe(0.25)
	reg.NewGaugeVecFunc("reroll_cached_objects", "Objects in the informer caches.", []string{"kind"},
		func(emit func(float64, ...string)) { emit(12, "ConfigMap") })

	if err := reg.WriteText(os.Stdout); err != nil {
		panic(err)
	}
	// Output:
	// # HELP reroll_cached_objects Objects in the informer caches.
	// # TYPE reroll_cached_objects gauge
	// reroll_cached_objects{kind="ConfigMap"} 12
	// # HELP reroll_sync_duration_seconds Sync latency in seconds.
	// # TYPE reroll_sync_duration_seconds histogram
	// reroll_sync_duration_seconds_bucket{le="0.1"} 0
	// reroll_sync_duration_seconds_bucket{le="1"} 1
	// reroll_sync_duration_seconds_bucket{le="+Inf"} 1
	// reroll_sync_duration_seconds_sum 0.25
	// reroll_sync_duration_seconds_count 1
	// # HELP reroll_syncs_total Syncs by result.
	// # TYPE reroll_syncs_total counter
	// reroll_syncs_total{result="success"} 1
}
