package controller

import (
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/reroll/reroll/pkg/metrics"
)

// Reasons a sync did not roll, the reason label of reroll_rollouts_skipped_total.
const (
	skipUnchanged   = "unchanged"
	skipAdopted     = "adopted"
	skipRebaselined = "rebaselined"
	skipReferences  = "references_changed"
	skipDryRun      = "dry_run"
	skipIgnored     = "ignored"
	skipBlocked     = "blocked"
	skipWebhook     = "webhook"
)

// controllerMetrics are the controller's own metrics. Workqueue and REST
// client metrics come from the registry's client-go adapters.
type controllerMetrics struct {
	rollouts     *metrics.CounterVec
	skipped      *metrics.CounterVec
	syncErrors   *metrics.CounterVec
	warnings     *metrics.CounterVec
	syncDuration *metrics.HistogramVec
	lastSuccess  *metrics.Gauge
	// pendingWrites counts the writes of the pending-changes Secret.
	pendingWrites *metrics.CounterVec
	// bakeFailures counts the rollouts reroll started that failed inside
	// their bake.
	bakeFailures *metrics.CounterVec
}

// newControllerMetrics registers the controller's metrics on reg.
func newControllerMetrics(reg *metrics.Registry) *controllerMetrics {
	return &controllerMetrics{
		rollouts: reg.NewCounterVec("reroll_rollouts_total",
			"Rollouts reroll triggered, by workload kind and namespace.", "kind", "namespace"),
		skipped: reg.NewCounterVec("reroll_rollouts_skipped_total",
			"Syncs and config changes that did not roll, by reason.", "reason"),
		syncErrors: reg.NewCounterVec("reroll_sync_errors_total",
			"Syncs that failed and were retried, by API error reason.", "reason"),
		warnings: reg.NewCounterVec("reroll_warnings_total",
			"Warning Events about bad input, by Event reason.", "reason"),
		syncDuration: reg.NewHistogramVec("reroll_sync_duration_seconds",
			"Time one sync took.", []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}, "kind"),
		lastSuccess: reg.NewGaugeVec("reroll_last_successful_sync_timestamp_seconds",
			"Unix time of the last sync that succeeded.").WithLabelValues(),
		pendingWrites: reg.NewCounterVec("reroll_pending_change_writes_total",
			"Writes of the Secret that keeps changes made before some of their consumers were adopted."),
		bakeFailures: reg.NewCounterVec("reroll_bake_failures_total",
			"Rollouts reroll started whose new pods restarted, crash-looped or stopped being fully available inside their bake, by workload kind.", "kind"),
	}
}

// observeSync records one sync's outcome.
func (m *controllerMetrics) observeSync(key workloadKey, start time.Time, err error) {
	m.syncDuration.WithLabelValues(key.groupKind).Observe(time.Since(start).Seconds())
	if err == nil {
		m.lastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
		return
	}
	reason := string(apierrors.ReasonForError(err))
	if reason == "" {
		reason = "Unknown"
	}
	m.syncErrors.WithLabelValues(reason).Inc()
}
