package controller

import (
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// This file lets reroll watch several namespaces with a Role in each and no
// ClusterRole (--namespaces). A watch of all namespaces needs cluster-wide
// access, so each namespace gets its own informer, as controller-runtime's
// multi-namespace cache does. informerGroup is one kind's informers, one per
// watched namespace (or a single one for all namespaces), read as one
// cache: a key or an index value is looked up in each.

// informerGroup is the informers of one kind: one for every namespace, or
// one per watched namespace. Only the methods reroll uses are provided, so
// nothing can read a single member by mistake.
type informerGroup []cache.SharedIndexInformer

// GetIndexer returns the members' indexers, read as one.
func (g informerGroup) GetIndexer() indexerGroup {
	indexers := make(indexerGroup, len(g))
	for i, inf := range g {
		indexers[i] = inf.GetIndexer()
	}
	return indexers
}

// GetStore returns the members' stores, read as one.
func (g informerGroup) GetStore() indexerGroup { return g.GetIndexer() }

// HasSynced reports whether every member has synced.
func (g informerGroup) HasSynced() bool {
	for _, inf := range g {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

// IsStopped reports whether any member has stopped.
func (g informerGroup) IsStopped() bool {
	for _, inf := range g {
		if inf.IsStopped() {
			return true
		}
	}
	return false
}

// AddEventHandlerWithOptions adds handler to every member. The members
// watch disjoint namespaces, so the handler sees each object once.
func (g informerGroup) AddEventHandlerWithOptions(handler cache.ResourceEventHandler, opts cache.HandlerOptions) error {
	for _, inf := range g {
		if _, err := inf.AddEventHandlerWithOptions(handler, opts); err != nil {
			return err
		}
	}
	return nil
}

// SetTransform sets the cache transform of every member.
func (g informerGroup) SetTransform(transform cache.TransformFunc) error {
	var errs []error
	for _, inf := range g {
		errs = append(errs, inf.SetTransform(transform))
	}
	return errors.Join(errs...)
}

// AddIndexers adds indexers to every member.
func (g informerGroup) AddIndexers(indexers cache.Indexers) error {
	var errs []error
	for _, inf := range g {
		errs = append(errs, inf.AddIndexers(indexers))
	}
	return errors.Join(errs...)
}

// indexerGroup is the indexers of an informerGroup, read as one.
type indexerGroup []cache.Indexer

// ByIndex returns the objects of every member whose index values include
// value.
func (g indexerGroup) ByIndex(index, value string) ([]any, error) {
	if len(g) == 1 {
		return g[0].ByIndex(index, value)
	}
	var all []any
	for _, ix := range g {
		objs, err := ix.ByIndex(index, value)
		if err != nil {
			return nil, err
		}
		all = append(all, objs...)
	}
	return all, nil
}

// GetByKey returns the object of key from the member that holds it.
func (g indexerGroup) GetByKey(key string) (any, bool, error) {
	for _, ix := range g {
		if obj, exists, err := ix.GetByKey(key); exists || err != nil {
			return obj, exists, err
		}
	}
	return nil, false, nil
}

// ListKeys returns the keys of every member.
func (g indexerGroup) ListKeys() []string {
	if len(g) == 1 {
		return g[0].ListKeys()
	}
	var keys []string
	for _, ix := range g {
		keys = append(keys, ix.ListKeys()...)
	}
	return keys
}

// List returns the objects of every member.
func (g indexerGroup) List() []any {
	if len(g) == 1 {
		return g[0].List()
	}
	var objs []any
	for _, ix := range g {
		objs = append(objs, ix.List()...)
	}
	return objs
}

// dynamicInformers are the informers of one custom resource, from one
// dynamic factory per watched namespace (or one for all namespaces).
type dynamicInformers struct {
	factories []dynamicinformer.DynamicSharedInformerFactory
	informers informerGroup
}

// newDynamicInformers returns the informers of resource in the namespaces
// o watches, resynced every resync (zero: never).
func newDynamicInformers(dyn dynamic.Interface, o Options, resync time.Duration, resource schema.GroupVersionResource) dynamicInformers {
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var d dynamicInformers
	for _, ns := range namespaces {
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, resync, ns, ignoreNamespaces(o.IgnoreNamespaces))
		d.factories = append(d.factories, f)
		d.informers = append(d.informers, f.ForResource(resource).Informer())
	}
	return d
}

// start starts every informer until stop is closed.
func (d dynamicInformers) start(stop <-chan struct{}) {
	for _, f := range d.factories {
		f.Start(stop)
	}
}

// shutdown waits for every informer to stop.
func (d dynamicInformers) shutdown() {
	for _, f := range d.factories {
		f.Shutdown()
	}
}
