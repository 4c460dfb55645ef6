package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
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

// maxPendingEvents bounds how many Events may wait for the events client's
// rate limit at once: a fan-out to 1,000 workloads still gets an Event on
// each, and a roll rate above that limit, sustained, drops Events instead of
// piling up goroutines. client-go's broadcaster queues as many.
const maxPendingEvents = 1000

// StartEvents starts sending Events through client (the events client,
// whose rate limit is qps), behind a bounded backlog. Events keep flowing
// while in-flight syncs finish after ctx is done; the returned stop ends
// them.
func StartEvents(ctx context.Context, client kubernetes.Interface, qps float32, reg *metrics.Registry) (events.EventRecorder, func(), error) {
	eventsCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	if err := broadcaster.StartRecordingToSinkWithContext(eventsCtx); err != nil {
		cancel()
		return nil, nil, fmt.Errorf("starting events: %w", err)
	}
	recorder := NewRateLimitedRecorder(broadcaster.NewRecorder(scheme.Scheme, "reroll.dev/reroll"), float64(qps), maxPendingEvents, reg)
	return recorder, func() { broadcaster.Shutdown(); cancel() }, nil
}
