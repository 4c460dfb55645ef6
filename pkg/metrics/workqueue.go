package metrics

import (
	"math"

	"k8s.io/client-go/util/workqueue"
)

// workqueueBuckets returns the bounds kube-controller-manager uses for
// workqueue latencies: 1e-8 s to 10 s in powers of ten. math.Pow10 gives
// the exact decimal at each step, where repeated multiplication would
// drift (1e-8*10 is not 1e-7 in floating point) and print ugly le values.
func workqueueBuckets() []float64 {
	b := make([]float64, 0, 10)
	for e := -8; e <= 1; e++ {
		b = append(b, math.Pow10(e))
	}
	return b
}

// workqueueProvider implements workqueue.MetricsProvider with the metric
// names and labels kube-controller-manager exposes, so existing dashboards
// and alerts for workqueues work unchanged. Each queue is one series,
// labelled with its name.
type workqueueProvider struct {
	depth, unfinished, longestRunning *GaugeVec
	adds, retries                     *CounterVec
	latency, workDuration             *HistogramVec
}

// WorkqueueMetricsProvider returns a workqueue.MetricsProvider that records
// into this registry; pass it as TypedRateLimitingQueueConfig.MetricsProvider
// and give the queue a Name (client-go records nothing for unnamed queues).
// The first call registers the workqueue_* families; later calls return the
// same provider, so any number of queues can share it. Two queues with the
// same name share their series.
func (r *Registry) WorkqueueMetricsProvider() workqueue.MetricsProvider {
	r.workqueueOnce.Do(func() {
		r.workqueue = &workqueueProvider{
			depth: r.NewGaugeVec("workqueue_depth",
				"Current depth of workqueue.", "name"),
			adds: r.NewCounterVec("workqueue_adds_total",
				"Total number of adds handled by workqueue.", "name"),
			latency: r.NewHistogramVec("workqueue_queue_duration_seconds",
				"How long in seconds an item stays in workqueue before being requested.", workqueueBuckets(), "name"),
			workDuration: r.NewHistogramVec("workqueue_work_duration_seconds",
				"How long in seconds processing an item from workqueue takes.", workqueueBuckets(), "name"),
			unfinished: r.NewGaugeVec("workqueue_unfinished_work_seconds",
				"How many seconds of work has been done that is in progress and hasn't been observed by work_duration. "+
					"Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.", "name"),
			longestRunning: r.NewGaugeVec("workqueue_longest_running_processor_seconds",
				"How many seconds has the longest running processor for workqueue been running.", "name"),
			retries: r.NewCounterVec("workqueue_retries_total",
				"Total number of retries handled by workqueue.", "name"),
		}
	})
	return r.workqueue
}

// workqueueProvider must keep satisfying client-go's interface.
var _ workqueue.MetricsProvider = (*workqueueProvider)(nil)

// NewDepthMetric implements workqueue.MetricsProvider.
func (p *workqueueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.depth.WithLabelValues(name)
}

// NewAddsMetric implements workqueue.MetricsProvider.
func (p *workqueueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.adds.WithLabelValues(name)
}

// NewLatencyMetric implements workqueue.MetricsProvider: time from Add to
// Get, in seconds.
func (p *workqueueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.latency.WithLabelValues(name)
}

// NewWorkDurationMetric implements workqueue.MetricsProvider: time from Get
// to Done, in seconds.
func (p *workqueueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.workDuration.WithLabelValues(name)
}

// NewUnfinishedWorkSecondsMetric implements workqueue.MetricsProvider. The
// queue sets it every 500ms to the summed age of items between Get and Done.
func (p *workqueueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.unfinished.WithLabelValues(name)
}

// NewLongestRunningProcessorSecondsMetric implements
// workqueue.MetricsProvider. The queue sets it every 500ms to the age of
// the oldest item between Get and Done.
func (p *workqueueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.longestRunning.WithLabelValues(name)
}

// NewRetriesMetric implements workqueue.MetricsProvider. The queue counts
// every AddAfter, which AddRateLimited is.
func (p *workqueueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.retries.WithLabelValues(name)
}
