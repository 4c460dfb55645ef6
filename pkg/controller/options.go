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
	// HashKey is the key of every hash reroll writes.
	HashKey plan.HashKey
	// FieldManager names reroll in the managedFields of what it writes.
	FieldManager string
	// ControllerNamespace is reroll's own namespace, where it keeps the Jobs
	// it is re-creating (jobs.go) and the pending changes.
	ControllerNamespace string
	// PendingChangesSecret names the Secret in ControllerNamespace where a
	// change that arrives before some of its consumers were adopted is
	// written down, so a crash does not lose it (pendingstore.go). Empty
	// keeps such changes in memory only.
	PendingChangesSecret string
	// Debounce delays syncs caused by config changes, so that a burst of
	// changes within it rolls a workload once. Zero syncs at once.
	Debounce time.Duration
	// AutoAll treats every workload as annotated reroll.dev/auto: "true".
	AutoAll bool
	// ReloaderAnnotations reads stakater/Reloader's annotations too (see
	// reloader.go).
	ReloaderAnnotations bool
	// RollOnAdopt rolls a workload the first time it is seen, instead of
	// recording a baseline.
	RollOnAdopt bool
	// DryRun computes, logs and reports what would be written, and writes
	// nothing but Events.
	DryRun bool
	// Clock drives the queue's delays and the debounce; nil means the real
	// clock. Tests inject a fake one to step through the debounce.
	Clock clock.WithTicker
	// Metrics is where the controller and its queue register their
	// metrics; nil keeps them private.
	Metrics *metrics.Registry

	// Namespaces limits the informers to these namespaces, each watched on
	// its own (a Role in each is enough); empty means all.
	Namespaces []string
	// SkipNamespaceObjects leaves the Namespaces themselves unread, for a
	// reroll with Roles only: their reroll.dev annotations then do not
	// apply. With all namespaces watched it must be false.
	SkipNamespaceObjects bool
	// ConfigSelector is a label selector that narrows, server-side, which
	// ConfigMaps and Secrets are watched. Empty means all.
	ConfigSelector string
	// NamespaceSelector is a label selector on Namespaces: workloads in
	// Namespaces that do not match are never synced. Namespaces that start
	// or stop matching are picked up at run time. Empty means all.
	NamespaceSelector string
	// IgnoreNamespaces are never watched: every informer excludes them
	// server-side, so nothing of theirs is cached.
	IgnoreNamespaces []string
	// ResyncPeriod makes the workload informers replay their caches, so
	// every workload is re-checked that often. Zero disables it.
	ResyncPeriod time.Duration
	// BuiltinResources are the built-in workload resources watched (see
	// BuiltinResources); nil means all of them.
	BuiltinResources []string
	// ExtraKinds are the custom kinds to roll (see RunExtraKinds).
	ExtraKinds []ExtraKind
	// WebhookURL, when set, receives a JSON description of each roll
	// (webhook.go) instead of the roll; WebhookClient sends it (nil: a
	// client with a 10 s timeout).
	WebhookURL    string
	WebhookClient *http.Client
	// IgnoreConfigTypes are the types of config object never watched,
	// cached or rolled on (--resources-to-ignore).
	IgnoreConfigTypes []plan.ConfigType
	// RollOnDelete rolls the consumers of a deleted consumed object
	// (--reload-on-delete).
	RollOnDelete bool
	// SecretsStoreCSI watches the Secrets Store CSI driver's
	// SecretProviderClassPodStatuses while their CRD exists (csi.go).
	SecretsStoreCSI bool
	// DiscoveryRecheckPeriod is how often RunExtraKinds re-checks discovery
	// for extra kinds whose CRDs come or go.
	DiscoveryRecheckPeriod time.Duration

	// The rollout-safety policies (see gate.go).

	// Waves are the waves of every change whose object has no
	// reroll.dev/waves annotation (--waves, parsed by plan.ParseWaves); nil
	// rolls every consumer at once.
	Waves []plan.WaveStep
	// RolloutWindow is --rollout-window, parsed: when rolls may start,
	// unless the workload, a changed object or the Namespace sets its own
	// (reroll.dev/rollout-window); nil: any time.
	RolloutWindow plan.Windows
	// RolloutTimeout is how long a rollout of a StatefulSet or DaemonSet may
	// take before it counts as failed.
	RolloutTimeout time.Duration
	// MaxRolloutsPerSecond spaces rolls over all workloads; 0: no limit.
	MaxRolloutsPerSecond float64
	// MaxInflightRollouts caps the opted-in workloads whose rollout is
	// incomplete, whoever started it; 0: no cap.
	MaxInflightRollouts int
	// MaxRollsPerWorkload holds a workload that rolled N times within a
	// window (ParseRollLimit); zero: no limit.
	MaxRollsPerWorkload plan.RollLimit

	// MayWrite, when set, is asked right before each write, with the
	// sync's context; false skips the write (leader election: the Lease was
	// taken, and the next leader syncs the workload anyway).
	MayWrite func(ctx context.Context) bool
}
