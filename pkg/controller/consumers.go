package controller

import (
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// Who consumes what, read from the caches: the index from each ConfigMap
// and Secret to its opted-in consumers.

// consumersIndex indexes workloads by the ConfigMaps and Secrets they
// consume, so a config event finds its consumers without a scan.
const consumersIndex = "reroll.dev/consumers"

// consumersIndexFunc indexes a workload under every ConfigMap and Secret it
// consumes (see configIndexValue). Workloads that are not opted in are not
// indexed, so config events never reach them.
func (c *Controller) consumersIndexFunc(a workloadAdapter) cache.IndexFunc {
	return func(obj any) ([]string, error) {
		w, err := viewWorkload(a, obj)
		if err != nil {
			return nil, err
		}
		return c.consumedIndexValues(w), nil
	}
}

// consumedIndexValues returns the consumersIndex values of w: one per
// object it consumes, none when it is not opted in.
func (c *Controller) consumedIndexValues(w workload) []string {
	// A malformed annotation still indexes what parsed: the sync reports
	// the problem, and fixing it must not depend on another event.
	o, _, _ := c.inputs.optInOf(w)
	if !o.Enabled() {
		return nil
	}
	consumed := plan.CalculateConsumption(w.references, o)
	values := make([]string, len(consumed))
	for i, u := range consumed {
		values[i] = configIndexValue(w.meta.GetNamespace(), u.Ref)
	}
	return values
}

// canFailIndex indexes, as consumersIndex does, only the workloads whose
// rollout has failed or can fail by timing out (plan.CanFail): the only
// consumers the halt of a change reads. A change without waves asks no
// more of its consumers, so its syncs read this short list, not every
// consumer: with all of them, a fan-out of one change to n workloads read
// n² consumers.
const canFailIndex = "reroll.dev/can-fail"

// canFailIndexFunc indexes a workload whose rollout can fail under every
// object it consumes.
func (c *Controller) canFailIndexFunc(a workloadAdapter) cache.IndexFunc {
	return func(obj any) ([]string, error) {
		w, err := viewWorkload(a, obj)
		if err != nil || !plan.CanFail(w.status) {
			return nil, err
		}
		return c.consumedIndexValues(w), nil
	}
}

// patternsIndex indexes, by namespace, the workloads that name objects by
// the patterns of Reloader's reload annotations: a config event in their
// namespace checks them too (changedConsumers).
const patternsIndex = "reroll.dev/patterns"

// patternsIndexFunc indexes a workload with patterns under its namespace.
func (c *Controller) patternsIndexFunc(a workloadAdapter) cache.IndexFunc {
	return func(obj any) ([]string, error) {
		w, err := viewWorkload(a, obj)
		if err != nil {
			return nil, err
		}
		if o, _, _ := c.inputs.optInOf(w); o.HasPatterns() {
			return []string{w.meta.GetNamespace()}, nil
		}
		return nil, nil
	}
}

// configIndexValue is the consumersIndex value of a config object.
func configIndexValue(namespace string, ref plan.ConfigRef) string {
	return string(ref.Type) + "/" + namespace + "/" + ref.Name
}

// wantsSync reports whether a workload is opted in, or carries opt-in
// annotations so malformed, or so at odds with each other, that the user
// must be told.
func (c *Controller) wantsSync(w workload) bool {
	o, conflicts, err := c.inputs.optInOf(w)
	return err != nil || len(conflicts) > 0 || o.Enabled()
}

// consumer is an opted-in workload that consumes a given object.
type consumer struct {
	key workloadKey
	w   workload
	o   plan.OptIn
}

// consumersOf returns the opted-in workloads of every kind that consume
// ref in namespace, from the consumers index.
func (c *Controller) consumersOf(namespace string, ref plan.ConfigRef) []consumer {
	var out []consumer
	for _, a := range c.adapterList() {
		objs, err := a.informer().GetIndexer().ByIndex(consumersIndex, configIndexValue(namespace, ref))
		if err != nil {
			continue
		}
		for _, obj := range objs {
			w, err := viewWorkload(a, obj)
			if err != nil {
				continue
			}
			o, _, err := c.inputs.optInOf(w)
			if err != nil || !o.Enabled() {
				continue
			}
			out = append(out, consumer{key: workloadKey{groupKind: a.groupKind(), name: cache.MetaObjectToName(w.meta)}, w: w, o: o})
		}
	}
	return out
}
