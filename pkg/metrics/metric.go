package metrics

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// atomicFloat is a float64 updated with compare-and-swap, so counters and
// gauges need no mutex on the hot path.
type atomicFloat struct{ bits atomic.Uint64 }

// load returns the current value.
func (f *atomicFloat) load() float64 { return math.Float64frombits(f.bits.Load()) }

// store replaces the value.
func (f *atomicFloat) store(v float64) { f.bits.Store(math.Float64bits(v)) }

// add adds d, retrying when another goroutine won the race.
func (f *atomicFloat) add(d float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Counter is one series of a CounterVec: a value that only goes up (it
// resets only when the process restarts, which Prometheus' rate() expects).
type Counter struct{ v atomicFloat }

// Inc adds 1.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds v. A negative or NaN v panics: a counter that goes down is read
// by rate() as a restart, which would silently corrupt every graph of it;
// use a Gauge for values that can fall.
func (c *Counter) Add(v float64) {
	if !(v >= 0) {
		panic(fmt.Sprintf("metrics: counter cannot be increased by %v; use a gauge for values that go down", v))
	}
	c.v.add(v)
}

// Gauge is one series of a GaugeVec: a value that can go up and down.
type Gauge struct{ v atomicFloat }

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.v.store(v) }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.v.add(-1) }

// Add adds v, which may be negative.
func (g *Gauge) Add(v float64) { g.v.add(v) }

// series is one label-value combination of a vec and its metric.
type series[M any] struct {
	labelValues []string
	metric      *M
}

// vec maps label values to series. It is shared by CounterVec, GaugeVec and
// HistogramVec, which differ only in the metric they hold and how one
// series is rendered.
type vec[M any] struct {
	desc *desc
	// newMetric creates the metric for a series seen for the first time.
	newMetric func() *M
	// appendSeries renders one series; pairs are its rendered labels.
	appendSeries func(b []byte, d *desc, pairs []byte, m *M) []byte

	mu     sync.RWMutex
	series map[string]*series[M]
}

// newVec returns an empty vec for d.
func newVec[M any](d *desc, newMetric func() *M, appendSeries func([]byte, *desc, []byte, *M) []byte) *vec[M] {
	return &vec[M]{desc: d, newMetric: newMetric, appendSeries: appendSeries, series: map[string]*series[M]{}}
}

// with returns the metric for labelValues, creating it on first use. Most
// calls find an existing series under the read lock, so concurrent workers
// do not serialise on it.
func (v *vec[M]) with(labelValues []string) *M {
	if err := checkLabelValues(v.desc, labelValues); err != nil {
		panic("metrics: " + err.Error())
	}
	values := validUTF8(labelValues)
	key := seriesKey(values)
	v.mu.RLock()
	s := v.series[key]
	v.mu.RUnlock()
	if s != nil {
		return s.metric
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s = v.series[key]; s == nil {
		// Clone: the variadic slice belongs to the caller, who may reuse it.
		s = &series[M]{labelValues: slices.Clone(values), metric: v.newMetric()}
		v.series[key] = s
	}
	return s.metric
}

// describe implements family.
func (v *vec[M]) describe() *desc { return v.desc }

// write implements family: series in label-value order.
func (v *vec[M]) write(b []byte) ([]byte, error) {
	v.mu.RLock()
	all := make([]*series[M], 0, len(v.series))
	for _, s := range v.series {
		all = append(all, s)
	}
	v.mu.RUnlock()
	slices.SortFunc(all, func(a, b *series[M]) int { return compareLabelValues(a.labelValues, b.labelValues) })
	var pairs []byte
	for _, s := range all {
		pairs = appendLabelPairs(pairs[:0], v.desc.labelNames, s.labelValues)
		b = v.appendSeries(b, v.desc, pairs, s.metric)
	}
	return b, nil
}

// CounterVec is a counter family partitioned by label values.
type CounterVec struct{ vec *vec[Counter] }

// NewCounterVec registers a counter family. By Prometheus convention its
// name ends in _total. It panics if the name is invalid or taken.
func (r *Registry) NewCounterVec(name, help string, labelNames ...string) *CounterVec {
	v := &CounterVec{newVec(newDesc(name, help, counterType, labelNames),
		func() *Counter { return &Counter{} },
		func(b []byte, d *desc, pairs []byte, c *Counter) []byte {
			return appendSample(b, d.name, "", pairs, "", c.v.load())
		})}
	r.register(v.vec)
	return v
}

// WithLabelValues returns the counter for the given label values, one per
// label name in registration order, creating it at 0. A wrong number of
// values panics. Keep the result when the labels are fixed, to skip the
// lookup on a hot path.
func (v *CounterVec) WithLabelValues(labelValues ...string) *Counter { return v.vec.with(labelValues) }

// GaugeVec is a gauge family partitioned by label values.
type GaugeVec struct{ vec *vec[Gauge] }

// NewGaugeVec registers a gauge family. It panics if the name is invalid or
// taken.
func (r *Registry) NewGaugeVec(name, help string, labelNames ...string) *GaugeVec {
	v := &GaugeVec{newVec(newDesc(name, help, gaugeType, labelNames),
		func() *Gauge { return &Gauge{} },
		func(b []byte, d *desc, pairs []byte, g *Gauge) []byte {
			return appendSample(b, d.name, "", pairs, "", g.v.load())
		})}
	r.register(v.vec)
	return v
}

// WithLabelValues returns the gauge for the given label values, one per
// label name in registration order, creating it at 0. A wrong number of
// values panics.
func (v *GaugeVec) WithLabelValues(labelValues ...string) *Gauge { return v.vec.with(labelValues) }
