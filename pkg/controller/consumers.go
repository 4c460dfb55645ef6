package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// Who consumes what, read from the caches: the index from each ConfigMap
// and Secret to its opted-in consumers, and the cached config objects.

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
		// A malformed annotation still indexes what parsed: the sync reports
		// the problem, and fixing it must not depend on another event.
		o, _, _ := c.optInOf(w)
		if !o.enabled() {
			return nil, nil
		}
		consumed := calculateConsumption(w.references, o)
		values := make([]string, len(consumed))
		for i, u := range consumed {
			values[i] = configIndexValue(w.meta.GetNamespace(), u.ref)
		}
		return values, nil
	}
}

// configIndexValue is the consumersIndex value of a config object.
func configIndexValue(namespace string, ref configRef) string {
	return string(ref.typ) + "/" + namespace + "/" + ref.name
}

// wantsSync reports whether a workload is opted in, or carries opt-in
// annotations so malformed, or so at odds with each other, that the user
// must be told.
func (c *Controller) wantsSync(w workload) bool {
	o, conflicts, err := c.optInOf(w)
	return err != nil || len(conflicts) > 0 || o.enabled()
}

// optInSettings returns the flags that shape how opt-in annotations are
// read.
func (c *Controller) optInSettings() optInSettings {
	return optInSettings{autoAll: c.opts.AutoAll, reloader: c.opts.ReloaderAnnotations}
}

// optInOf reads how a cached workload opts in (see parseOptIn), with
// Reloader's annotations of its pod template when it has none of its own.
func (c *Controller) optInOf(w workload) (optIn, []string, error) {
	annotations := w.meta.GetAnnotations()
	if c.opts.ReloaderAnnotations {
		annotations = withReloaderFallback(annotations, w.templateAnnotations)
	}
	return parseOptIn(annotations, c.optInSettings())
}

// consumer is an opted-in workload that consumes a given object.
type consumer struct {
	key workloadKey
	w   workload
	o   optIn
}

// consumersOf returns the opted-in workloads of every kind that consume
// ref in namespace, from the consumers index.
func (c *Controller) consumersOf(namespace string, ref configRef) []consumer {
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
			o, _, err := c.optInOf(w)
			if err != nil || !o.enabled() {
				continue
			}
			out = append(out, consumer{key: workloadKey{groupKind: a.groupKind(), name: cache.MetaObjectToName(w.meta)}, w: w, o: o})
		}
	}
	return out
}

// configObject returns the cached ConfigMap or Secret ref of namespace.
func (c *Controller) configObject(namespace string, ref configRef) (metav1.Object, bool) {
	var obj metav1.Object
	var err error
	switch ref.typ {
	case typeConfigMap:
		obj, err = c.configMaps.ConfigMaps(namespace).Get(ref.name)
	case typeSecret:
		obj, err = c.secrets.Secrets(namespace).Get(ref.name)
	}
	// The listers fail only with NotFound.
	return obj, err == nil && obj != nil
}

// configLookup returns a lookup of the cached ConfigMaps and Secrets of a
// namespace that also records, in found, the digests of what it looks up.
func (c *Controller) configLookup(namespace string, found map[configRef]map[string]string) configLookup {
	return newConfigLookup(func(ref configRef) (metav1.Object, bool) { return c.configObject(namespace, ref) },
		c.opts.ReloaderAnnotations, found)
}

// currentDigests returns the cached digests of a config object, or nil.
func (c *Controller) currentDigests(namespace string, ref configRef) map[string]string {
	obj, ok := c.configObject(namespace, ref)
	if !ok {
		return nil
	}
	return cachedDigests(obj)
}
