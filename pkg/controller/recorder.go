package controller

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/reroll/reroll/pkg/metrics"
)

// rateLimitedRecorder is an EventRecorder that drops Events beyond a token
// bucket instead of queueing them. client-go's events.k8s.io broadcaster
// starts one goroutine per Event, which then waits for the events client's
// rate limit; a roll rate above that limit, sustained, would pile those up
// without bound. Events are best-effort, and what they report is also
// logged and counted.
type rateLimitedRecorder struct {
	next    events.EventRecorder
	limiter flowcontrol.PassiveRateLimiter
	dropped *metrics.CounterVec
}

// NewRateLimitedRecorder returns a recorder that passes Events to next at
// qps per second on average, in bursts of up to burst, and counts the others
// in reroll_events_dropped_total. With the events client's QPS, at most
// about burst Events wait for that client at any time.
func NewRateLimitedRecorder(next events.EventRecorder, qps float64, burst int, reg *metrics.Registry) events.EventRecorder {
	return &rateLimitedRecorder{
		next:    next,
		limiter: flowcontrol.NewTokenBucketPassiveRateLimiter(float32(qps), burst),
		dropped: reg.NewCounterVec("reroll_events_dropped_total",
			"Events not sent because they came faster than the events rate limit, by reason.", "reason"),
	}
}

// Eventf implements events.EventRecorder.
func (r *rateLimitedRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...interface{}) {
	if !r.limiter.TryAccept() {
		r.dropped.WithLabelValues(reason).Inc()
		return
	}
	r.next.Eventf(regarding, related, eventtype, reason, action, note, args...)
}
