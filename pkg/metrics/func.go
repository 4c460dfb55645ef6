package metrics

import (
	"errors"
	"fmt"
	"slices"
)

// funcSample is one series produced by a scrape-time callback.
type funcSample struct {
	labelValues []string
	value       float64
}

// funcFamily is a family whose series are computed by a callback at every
// scrape, for values that already live elsewhere (cache sizes, runtime
// statistics) and would otherwise need a goroutine copying them into a
// gauge.
type funcFamily struct {
	desc    *desc
	collect func(emit func(value float64, labelValues ...string))
}

// describe implements family.
func (f *funcFamily) describe() *desc { return f.desc }

// write implements family. It calls the callback, then checks what it
// emitted: a wrong label count, a duplicate series or a negative counter
// would make the exposition invalid, so it becomes the scrape's error.
func (f *funcFamily) write(b []byte) ([]byte, error) {
	var samples []funcSample
	var errs []error
	f.collect(func(value float64, labelValues ...string) {
		if err := checkLabelValues(f.desc, labelValues); err != nil {
			errs = append(errs, err)
			return
		}
		if f.desc.typ == counterType && !(value >= 0) {
			errs = append(errs, fmt.Errorf("counter %q has value %v for labels %q; counters cannot be negative or NaN", f.desc.name, value, labelValues))
			return
		}
		samples = append(samples, funcSample{slices.Clone(validUTF8(labelValues)), value})
	})
	slices.SortFunc(samples, func(a, b funcSample) int { return compareLabelValues(a.labelValues, b.labelValues) })
	for i := 1; i < len(samples); i++ {
		if slices.Equal(samples[i-1].labelValues, samples[i].labelValues) {
			errs = append(errs, fmt.Errorf("metric %q: label values %q emitted twice", f.desc.name, samples[i].labelValues))
		}
	}
	if len(errs) > 0 {
		return b, errors.Join(errs...)
	}
	var pairs []byte
	for _, s := range samples {
		pairs = appendLabelPairs(pairs[:0], f.desc.labelNames, s.labelValues)
		b = appendSample(b, f.desc.name, "", pairs, "", s.value)
	}
	return b, nil
}

// newFuncFamily registers a scrape-time family of type typ.
func (r *Registry) newFuncFamily(name, help string, typ metricType, labelNames []string, collect func(emit func(value float64, labelValues ...string))) {
	r.register(&funcFamily{desc: newDesc(name, help, typ, labelNames), collect: collect})
}

// NewGaugeFunc registers an unlabelled gauge whose value f computes at
// every scrape. f must be safe to call from the HTTP server's goroutines.
func (r *Registry) NewGaugeFunc(name, help string, f func() float64) {
	r.newFuncFamily(name, help, gaugeType, nil, func(emit func(float64, ...string)) { emit(f()) })
}

// NewCounterFunc registers an unlabelled counter whose value f computes at
// every scrape, for totals kept elsewhere (CPU time, say). f must never
// return less than it did before, or rate() reads a restart; a negative or
// NaN value fails the scrape.
func (r *Registry) NewCounterFunc(name, help string, f func() float64) {
	r.newFuncFamily(name, help, counterType, nil, func(emit func(float64, ...string)) { emit(f()) })
}

// NewGaugeVecFunc registers a labelled gauge family computed at every
// scrape: f calls emit once per series, with one label value per label name
// in order, e.g. objects cached per kind:
//
//	reg.NewGaugeVecFunc("reroll_cached_objects", "Objects in the informer caches.", []string{"kind"},
//		func(emit func(float64, ...string)) {
//			emit(float64(len(cmInformer.GetStore().ListKeys())), "ConfigMap")
//			emit(float64(len(secretInformer.GetStore().ListKeys())), "Secret")
//		})
//
// Series not emitted in a scrape are absent from it. Emitting a wrong
// number of label values, or the same label values twice, fails the scrape
// with an error naming the family (Handler answers 500), rather than
// exposing something Prometheus would reject. emit must not be called after
// f returns.
func (r *Registry) NewGaugeVecFunc(name, help string, labelNames []string, f func(emit func(value float64, labelValues ...string))) {
	r.newFuncFamily(name, help, gaugeType, labelNames, f)
}
