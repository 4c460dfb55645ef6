// Package controller is reroll's controller: it watches the ConfigMaps and
// Secrets that workloads consume and rolls each affected workload once when
// the content it consumes changes.
//
// Data flows one way: an informer event becomes a workload key in a
// rate-limited queue (handlers.go); a worker (run.go) syncs the key
// (sync.go: plan, apply, report) by reading current state from the
// informers' caches, and makes at most one write (a patch of reroll's
// annotations); between its plan and its write, the rollout-safety policies
// (gate.go) may hold a roll. The caches hold digests of ConfigMap and Secret values,
// never the values (cache.go). NewController (wiring.go) puts it together.
//
// The pure logic has files of its own, each with table-driven tests: what a
// pod template consumes (references.go), the opt-in annotations
// (annotations.go), the recorded state and the roll decision (state.go,
// plan.go), the keyed hashes (hash.go) and the digests (digest.go).
package controller

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
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

	// Namespace limits every informer to one namespace; empty means all.
	Namespace string
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
	// DiscoveryRecheckPeriod is how often RunExtraKinds re-checks discovery
	// for extra kinds whose CRDs come or go.
	DiscoveryRecheckPeriod time.Duration

	// The rollout-safety policies (see gate.go).

	// Waves are the waves of every change whose object has no
	// reroll.dev/waves annotation (--waves, parsed by plan.ParseWaves); nil
	// rolls every consumer at once.
	Waves []plan.WaveStep
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

// Controller rolls workloads whose consumed ConfigMap and Secret content
// changed.
type Controller struct {
	opts Options

	// adapters are the workload kinds watched, by group kind. Custom kinds
	// are added and removed while running, hence the lock.
	adaptersMu sync.RWMutex
	adapters   map[string]workloadAdapter
	// configMaps and secrets read the digested config objects.
	configMaps         corelisters.ConfigMapLister
	secrets            corelisters.SecretLister
	configMapsInformer cache.SharedIndexInformer
	secretsInformer    cache.SharedIndexInformer
	// namespaces reads the Namespaces' labels, for the namespace selector,
	// and their reroll.dev/paused annotation.
	namespaces corelisters.NamespaceLister
	// namespaceSelector is Options.NamespaceSelector, parsed.
	namespaceSelector labels.Selector
	// cachesSynced reports whether every informer has synced; workers start
	// only then, so a sync never mistakes a not-yet-listed object for a
	// missing one.
	cachesSynced []cache.InformerSynced
	// informers are checked for health.
	informers []cache.SharedIndexInformer

	// queue holds workload keys, never objects.
	queue    workqueue.TypedRateLimitingInterface[workloadKey]
	recorder events.EventRecorder
	metrics  *controllerMetrics

	// memory is what the controller remembers of workloads between syncs.
	memory *workloadMemory
	// bursts holds each workload's pending burst of config changes, so a
	// sync queued early by anything else cannot cut the burst short.
	bursts *burstTracker
	// changes holds each workload's pending consumed change: it makes the
	// workload urgent in the queue, and keeps a baseline for one not
	// adopted yet (changes.go).
	changes *changeTracker
	// pacer, flaps and inflight keep the state of the pacing, flap and
	// in-flight policies (limits.go).
	pacer    *pacer
	flaps    *flapBreaker
	inflight *inflightSet

	// syncHandler syncs one key; a field so tests can replace it.
	syncHandler func(ctx context.Context, key workloadKey) error
}

// namespaceSelected reports whether workloads in namespace may be synced:
// it is not ignored, and its labels match the namespace selector. A
// Namespace that is not cached (yet) is not selected.
func (c *Controller) namespaceSelected(namespace string) bool {
	if slices.Contains(c.opts.IgnoreNamespaces, namespace) {
		return false
	}
	if c.namespaceSelector.Empty() {
		return true
	}
	ns, err := c.namespaces.Get(namespace)
	return err == nil && c.namespaceSelector.Matches(labels.Set(ns.Labels))
}

// adapterFor returns the adapter of the watched workload kind groupKind.
func (c *Controller) adapterFor(groupKind string) (workloadAdapter, bool) {
	c.adaptersMu.RLock()
	defer c.adaptersMu.RUnlock()
	a, ok := c.adapters[groupKind]
	return a, ok
}

// adapterList returns the adapters of the watched workload kinds.
func (c *Controller) adapterList() []workloadAdapter {
	c.adaptersMu.RLock()
	defer c.adaptersMu.RUnlock()
	return slices.Collect(maps.Values(c.adapters))
}

// forget drops what the controller remembers of a workload that is gone or
// no longer opted in.
func (c *Controller) forget(key workloadKey) {
	c.memory.forget(key)
	c.bursts.forget(key)
	c.changes.forget(key)
	c.pacer.forget(key)
	c.flaps.forget(key)
}
