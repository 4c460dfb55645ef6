// Package controller is reroll's controller: it watches the ConfigMaps and
// Secrets that workloads consume and rolls each affected workload once when
// the content it consumes changes.
//
// Data flows one way: an informer event becomes a workload key in a
// rate-limited queue (handlers.go); a worker (run.go) syncs the key
// (sync.go: decide, apply, report) by reading current state from the
// informers' caches, and makes at most one write (a patch of reroll's
// annotations). The decisions are pkg/plan's pure functions: this package
// reads their inputs through a cacheView (view.go), gathers the rules'
// facts (gather.go), decides (decide.go), and carries out the answer. The
// caches hold digests of ConfigMap and Secret values, never the values
// (cache.go). The kubectl plugin's Inspector (inspect.go) decides with the
// same view, gatherer and decide, over a snapshot.
//
// The Controller keeps only what the sync needs; each side system is a type
// that owns its state: the kinds (kinds.go, registry.go), the memories
// (memories.go), the reporter, the pending store, the Job re-creator (in
// the Job adapter), the CSI source, the custom kinds and the webhook.
//
// Its files depend on each other one way too, lowest layer first. `make
// lint` fails on any cycle, and `cd hack/tools && go run ./cmd/filedeps
// -graph -dir=$PWD/../.. ./pkg/controller` prints the layers.
package controller

import (
	"context"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Controller rolls workloads whose consumed ConfigMap and Secret content
// changed.
type Controller struct {
	opts Options
	// view reads the caches as every decision does; gatherer gathers the
	// rules' facts from it and decides.
	view     *cacheView
	gatherer *gatherer
	// queue holds workload keys, never objects.
	queue workqueue.TypedRateLimitingInterface[workloadKey]
	// memory is what the controller remembers of workloads between syncs.
	memory *workloadMemory
	// pending writes down the changes whose baselines the memory keeps for
	// workloads not adopted yet, so a crash keeps them too
	// (pendingstore.go).
	pending *pendingStore
	// reporter tells what syncs and handlers did, in Events, logs and
	// metrics.
	reporter *reporter
	// csi, customKinds and webhook are the side systems Run starts or the
	// sync calls.
	csi         *csiSource
	customKinds *customKinds
	webhook     *webhookNotifier
	publisher   *settingsPublisher
	// pods watches the pods of the namespaces where a bake is not over.
	pods *podWatch
	// cachesSynced reports whether every informer has synced; workers start
	// only then, so a sync never mistakes a not-yet-listed object for a
	// missing one. informers are checked for health.
	cachesSynced []cache.InformerSynced
	informers    []informerGroup

	// syncHandler syncs one key; a field so tests can replace it.
	syncHandler func(ctx context.Context, key workloadKey) error
}

// wake syncs keys at once.
func (c *Controller) wake(keys []workloadKey) {
	for _, k := range keys {
		c.queue.Add(k)
	}
}
