package controller

import (
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"

	"k8s.io/client-go/tools/cache"
)

// kindRegistry holds the adapters of the workload kinds watched, by group
// kind. Custom kinds are added and removed while running, hence the lock.
type kindRegistry struct {
	mu       sync.RWMutex
	adapters map[string]workloadAdapter
}

// newKindRegistry returns an empty registry.
func newKindRegistry() *kindRegistry {
	return &kindRegistry{adapters: map[string]workloadAdapter{}}
}

// add registers an adapter.
func (r *kindRegistry) add(a workloadAdapter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.adapters[a.groupKind()] = a
}

// remove unregisters an adapter.
func (r *kindRegistry) remove(a workloadAdapter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.adapters, a.groupKind())
}

// get returns the adapter of groupKind.
func (r *kindRegistry) get(groupKind string) (workloadAdapter, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.adapters[groupKind]
	return a, ok
}

// list returns every adapter, sorted by group kind so that walks are
// repeatable.
func (r *kindRegistry) list() []workloadAdapter {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := slices.Collect(maps.Values(r.adapters))
	slices.SortFunc(out, func(a, b workloadAdapter) int { return strings.Compare(a.groupKind(), b.groupKind()) })
	return out
}

// indexed yields, over every kind, each cached workload whose values of
// index include value, with its adapter: the one walk of the workload
// indexes that the handlers, the gatherer, the CSI source and the
// inspector all make. A kind without that index yields nothing.
func (r *kindRegistry) indexed(index, value string) iter.Seq2[workloadAdapter, *cachedWorkload] {
	return func(yield func(workloadAdapter, *cachedWorkload) bool) {
		for _, a := range r.list() {
			objs, err := a.informer().GetIndexer().ByIndex(index, value)
			if err != nil {
				continue
			}
			for _, obj := range objs {
				if cw, ok := obj.(*cachedWorkload); ok && !yield(a, cw) {
					return
				}
			}
		}
	}
}

// inNamespace yields every cached workload of namespace, with its adapter.
func (r *kindRegistry) inNamespace(namespace string) iter.Seq2[workloadAdapter, *cachedWorkload] {
	return r.indexed(cache.NamespaceIndex, namespace)
}
