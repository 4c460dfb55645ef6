package main

import (
	"math"
	"slices"
	"time"
)

const (
	// rollSeriesStep is the step of a rolls-over-time series: fine enough
	// for a fan-out of a few seconds, and a paced one of 20 s stays at 200
	// values.
	rollSeriesStep = 100 * time.Millisecond
	// quantileSteps is how many steps a quantile series has from 0 to 1.
	quantileSteps = 100
)

// rollSeries returns how many of the Deployments had rolled at each step
// since the change, named "rolled since the change" with suffix.
func rollSeries(suffix string, changed time.Time, rolls []time.Time) series {
	return series{
		Name: "rolled since the change" + suffix, X: "seconds since the change",
		Step: rollSeriesStep.Seconds(), Unit: "Deployments",
		Values: cumulative(changed, rolls, rollSeriesStep),
	}
}

// latencySeries returns the quantiles of latencies (in ms), rounded to
// the microsecond.
func latencySeries(name string, latencies []float64) series {
	q := quantiles(latencies, quantileSteps)
	for i, v := range q {
		q[i] = math.Round(v*1000) / 1000
	}
	return series{Name: name, X: "quantile", Step: 1.0 / quantileSteps, Unit: "ms", Values: q}
}

// cumulative returns, for i = 0, 1, ... until every time is counted, how
// many of times are at or before start + i × step. Times before start count
// from the first value on.
func cumulative(start time.Time, times []time.Time, step time.Duration) []float64 {
	offsets := make([]time.Duration, len(times))
	for i, t := range times {
		offsets[i] = t.Sub(start)
	}
	slices.Sort(offsets)
	var out []float64
	counted := 0
	for at := time.Duration(0); ; at += step {
		for counted < len(offsets) && offsets[counted] <= at {
			counted++
		}
		out = append(out, float64(counted))
		if counted == len(offsets) {
			return out
		}
	}
}

// quantiles returns the nearest-rank quantiles of values at q = i / steps
// for i = 0 ... steps: the minimum first and the maximum last. It returns
// nil for no values.
func quantiles(values []float64, steps int) []float64 {
	if len(values) == 0 {
		return nil
	}
	s := slices.Sorted(slices.Values(values))
	out := make([]float64, steps+1)
	for i := range out {
		rank := int(math.Ceil(float64(i) / float64(steps) * float64(len(s))))
		out[i] = s[max(rank-1, 0)]
	}
	return out
}
