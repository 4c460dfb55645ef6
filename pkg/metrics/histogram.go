package metrics

import (
	"fmt"
	"math"
	"sort"
	"sync"
)

// Histogram is one series of a HistogramVec: observations counted into
// buckets by upper bound, plus their sum and count.
//
// It takes a mutex per observation rather than using per-bucket atomics,
// because a scrape must see the buckets, the sum and the count from the
// same instant: otherwise the +Inf bucket could disagree with _count, which
// is an invalid exposition. An uncontended mutex costs tens of nanoseconds,
// far below anything a controller observes.
type Histogram struct {
	upperBounds []float64 // shared by the family, never modified

	mu sync.Mutex
	// counts[i] counts observations in (upperBounds[i-1], upperBounds[i]];
	// the extra last element counts those above every bound. They are
	// stored per bucket and made cumulative when rendered.
	counts []uint64
	sum    float64
}

// Observe records v. NaN lands only in the +Inf bucket (and makes the sum
// NaN), as in Prometheus' own client.
func (h *Histogram) Observe(v float64) {
	// The first bound >= v is the bucket whose le includes v.
	i := sort.SearchFloat64s(h.upperBounds, v)
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.mu.Unlock()
}

// snapshot returns cumulative bucket counts (the last one is the total
// count, i.e. the +Inf bucket) and the sum, all from one instant.
func (h *Histogram) snapshot() (cumulative []uint64, sum float64) {
	cumulative = make([]uint64, len(h.counts))
	h.mu.Lock()
	copy(cumulative, h.counts)
	sum = h.sum
	h.mu.Unlock()
	for i := 1; i < len(cumulative); i++ {
		cumulative[i] += cumulative[i-1]
	}
	return cumulative, sum
}

// HistogramVec is a histogram family partitioned by label values.
type HistogramVec struct{ vec *vec[Histogram] }

// NewHistogramVec registers a histogram family with the given bucket upper
// bounds, which must be strictly increasing and not NaN; a +Inf bucket is
// always added, so a trailing +Inf in buckets is dropped. The label name
// "le" is reserved for the bounds. It panics on invalid buckets or names,
// or when the name or one of its _bucket, _sum, _count samples is taken.
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labelNames ...string) *HistogramVec {
	d := newDesc(name, help, histogramType, labelNames)
	bounds := validBuckets(name, buckets)
	// The le strings are the same for every series and every scrape.
	le := make([]string, len(bounds)+1)
	for i, ub := range bounds {
		le[i] = formatFloat(ub)
	}
	le[len(bounds)] = "+Inf"
	v := &HistogramVec{newVec(d,
		func() *Histogram {
			return &Histogram{upperBounds: bounds, counts: make([]uint64, len(bounds)+1)}
		},
		func(b []byte, d *desc, pairs []byte, h *Histogram) []byte {
			cumulative, sum := h.snapshot()
			for i, c := range cumulative {
				b = appendSample(b, d.name, "_bucket", pairs, le[i], float64(c))
			}
			b = appendSample(b, d.name, "_sum", pairs, "", sum)
			return appendSample(b, d.name, "_count", pairs, "", float64(cumulative[len(cumulative)-1]))
		})}
	r.register(v.vec)
	return v
}

// WithLabelValues returns the histogram for the given label values, one per
// label name in registration order, creating it empty. A wrong number of
// values panics.
func (v *HistogramVec) WithLabelValues(labelValues ...string) *Histogram {
	return v.vec.with(labelValues)
}

// validBuckets returns a private copy of buckets without a trailing +Inf,
// panicking unless the bounds are strictly increasing and not NaN: Observe
// binary-searches them, and Prometheus requires increasing le values.
func validBuckets(name string, buckets []float64) []float64 {
	bounds := make([]float64, 0, len(buckets))
	for i, ub := range buckets {
		if math.IsInf(ub, +1) && i == len(buckets)-1 {
			break // the +Inf bucket is implicit
		}
		if math.IsNaN(ub) || math.IsInf(ub, +1) || (len(bounds) > 0 && !(ub > bounds[len(bounds)-1])) {
			panic(fmt.Sprintf("metrics: histogram %q: buckets must be strictly increasing, not NaN, and +Inf only last, got %v", name, buckets))
		}
		bounds = append(bounds, ub)
	}
	return bounds
}
