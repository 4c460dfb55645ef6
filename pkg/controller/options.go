package controller

import (
	"context"
	"net/http"
	"time"

	"k8s.io/utils/clock"

	"github.com/reroll/reroll/pkg/metrics"
	"github.com/reroll/reroll/pkg/plan"
)

// Options configure a Controller and its informers. Each setting is carried
// here once, from the flags to every part that uses it.
type Options struct {
	// Decisions are the settings that change what reroll decides, which
	// the kubectl plugin shares (see DecisionFlags).
	Decisions

	// HashKey is the key of every hash reroll writes.
	HashKey plan.HashKey
	// FieldManager names reroll in the managedFields of what it writes.
	FieldManager string
	// ControllerNamespace is reroll's own namespace, where it keeps the Jobs
	// it is re-creating (jobs.go), the pending changes and its hash key.
	ControllerNamespace string
	// HashKeySecret names the Secret in ControllerNamespace that holds the
	// hash key; Run publishes Published on it (see AnnotationSettings).
	// Empty publishes nothing.
	HashKeySecret string
	// Published are the values of the decision flags, as Run publishes them
	// for the kubectl plugin.
	Published map[string]string
	// PendingChangesSecret names the Secret in ControllerNamespace where a
	// change that arrives before some of its consumers were adopted is
	// written down, so a crash does not lose it (pendingstore.go). Empty
	// keeps such changes in memory only.
	PendingChangesSecret string
	// Debounce delays syncs caused by config changes, so that a burst of
	// changes within it rolls a workload once. Zero syncs at once.
	Debounce time.Duration
	// DryRun computes, logs and reports what would be written, and writes
	// nothing but Events.
	DryRun bool
	// Clock drives the queue's delays and the debounce; nil means the real
	// clock. Tests inject a fake one to step through the debounce.
	Clock clock.WithTicker
	// Metrics is where the controller and its queue register their
	// metrics; nil keeps them private.
	Metrics *metrics.Registry

	// SkipNamespaceObjects leaves the Namespaces themselves unread, for a
	// reroll with Roles only: their reroll.dev annotations then do not
	// apply. With all namespaces watched it must be false.
	SkipNamespaceObjects bool
	// ResyncPeriod makes the workload informers replay their caches, so
	// every workload is re-checked that often. Zero disables it.
	ResyncPeriod time.Duration
	// WebhookURL, when set, receives a JSON description of each roll
	// (webhook.go) instead of the roll; WebhookClient sends it (nil: a
	// client with a 10 s timeout).
	WebhookURL    string
	WebhookClient *http.Client
	// DiscoveryRecheckPeriod is how often the custom kinds and the Secrets
	// Store CSI driver's statuses are looked up again in discovery, for
	// CRDs that come or go.
	DiscoveryRecheckPeriod time.Duration

	// MayWrite, when set, is asked right before each write, with the
	// sync's context; false skips the write (leader election: the Lease was
	// taken, and the next leader syncs the workload anyway).
	MayWrite func(ctx context.Context) bool
}
