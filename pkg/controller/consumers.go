package controller

import (
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// Who consumes what, read from the caches: the indexes from each ConfigMap
// and Secret to its opted-in consumers, and the walks over them.

// consumersIndex indexes workloads by the ConfigMaps and Secrets they
// consume, so a config event finds its consumers without a scan.
const consumersIndex = "reroll.dev/consumers"

// canFailIndex indexes, as consumersIndex does, only the workloads whose
// rollout has failed or can fail by timing out (plan.CanFail): the only
// consumers the halt of a change reads. A change without waves asks no
// more of its consumers, so its syncs read this short list, not every
// consumer: with all of them, a fan-out of one change to n workloads read
// n² consumers.
const canFailIndex = "reroll.dev/can-fail"

// patternsIndex indexes, by namespace, the workloads that name objects by
// the patterns of Reloader's reload annotations: a config event in their
// namespace checks them too (changedConsumers).
const patternsIndex = "reroll.dev/patterns"

// indexers returns the indexes of a workload kind: who consumes what
// (consumersIndex), who of them can fail (canFailIndex), and who names
// objects by patterns (patternsIndex).
func (v *cacheView) indexers(a workloadAdapter) cache.Indexers {
	viewed := func(index func(w workload) []string) cache.IndexFunc {
		return func(obj any) ([]string, error) {
			w, err := viewWorkload(a, obj)
			if err != nil {
				return nil, err
			}
			return index(w), nil
		}
	}
	return cache.Indexers{
		consumersIndex: viewed(v.consumedIndexValues),
		canFailIndex: viewed(func(w workload) []string {
			if !plan.CanFail(w.status) {
				return nil
			}
			return v.consumedIndexValues(w)
		}),
		patternsIndex: viewed(func(w workload) []string {
			if o, _, _ := v.optInOf(w); o.HasPatterns() {
				return []string{w.meta.GetNamespace()}
			}
			return nil
		}),
	}
}

// consumedIndexValues returns the consumersIndex values of w: one per
// object it consumes, none when it is not opted in.
func (v *cacheView) consumedIndexValues(w workload) []string {
	// A malformed annotation still indexes what parsed: the sync reports
	// the problem, and fixing it must not depend on another event.
	o, _, _ := v.optInOf(w)
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

// configIndexValue is the consumersIndex value of a config object.
func configIndexValue(namespace string, ref plan.ConfigRef) string {
	return string(ref.Type) + "/" + namespace + "/" + ref.Name
}

// consumer is an opted-in workload that consumes a given object.
type consumer struct {
	key workloadKey
	w   workload
	o   plan.OptIn
}

// consumersOf returns the opted-in workloads of every kind that consume
// ref in namespace, from the consumers index, with a readable opt-in: the
// consumers the rules and the wakes of held rolls see.
func (v *cacheView) consumersOf(namespace string, ref plan.ConfigRef) []consumer {
	return v.collectConsumers(map[workloadKey]bool{}, consumersIndex, configIndexValue(namespace, ref),
		func(o plan.OptIn, err error) bool { return err == nil && o.Enabled() }, nil)
}

// changedConsumers returns the workloads of every kind that a change of ref
// in namespace may concern: those the consumers index names (a malformed
// opt-in included, so that its sync reports it), and those whose Reloader
// reload patterns match ref (the index cannot know the objects a pattern
// will match), each once.
func (v *cacheView) changedConsumers(namespace string, ref plan.ConfigRef) []consumer {
	seen := map[workloadKey]bool{}
	all := func(plan.OptIn, error) bool { return true }
	out := v.collectConsumers(seen, consumersIndex, configIndexValue(namespace, ref), all, nil)
	return v.collectConsumers(seen, patternsIndex, namespace, func(o plan.OptIn, _ error) bool { return o.Matches(ref) }, out)
}

// collectConsumers appends to out the workloads that the index names under
// value, not in seen, and whose opt-in keep accepts, and marks them seen.
func (v *cacheView) collectConsumers(seen map[workloadKey]bool, index, value string, keep func(plan.OptIn, error) bool, out []consumer) []consumer {
	for a, cw := range v.kinds.indexed(index, value) {
		key := keyOfCached(a, cw)
		if seen[key] {
			continue
		}
		w, err := viewWorkload(a, cw)
		if err != nil {
			continue
		}
		o, _, err := v.optInOf(w)
		if !keep(o, err) {
			continue
		}
		seen[key] = true
		out = append(out, consumer{key: key, w: w, o: o})
	}
	return out
}
