package main

import (
	"cmp"
	"slices"
	"strings"
)

// The names the bench gives what the plots draw (hack/tools/cmd/bench).
const (
	rollSeriesPrefix = "rolled since the change"
	latencySuffix    = " latency"
)

// sizePoint is reroll's memory in one run at one cluster size, in MiB.
type sizePoint struct {
	source string
	// workloads are the cached Deployments; objects the cached ConfigMaps
	// and Secrets.
	workloads, objects float64
	readyPeak          float64 // peak RSS when /readyz first passed
	adoptedPeak        float64 // peak RSS once every workload was adopted
	endPeak            float64 // peak RSS at the end of the run
	adoptedHeap        float64 // heap in use once every workload was adopted
}

// sizeScenario is a scenario that measures memory at a cluster size.
type sizeScenario struct {
	name string
	// when ends the names of its figures taken once every workload was
	// adopted.
	when string
}

// sizeScenarios returns the scenarios that measure memory at a cluster
// size.
func sizeScenarios() []sizeScenario {
	return []sizeScenario{{"memory", "after sync"}, {"scale", "after adoption"}}
}

// memoryBySize returns a point for each cluster size the memory and scale
// scenarios ran at: for each scenario and scale, from the newest report at
// minScale or more. Points are ordered by workloads.
func memoryBySize(reports []report, minScale float64) []sizePoint {
	type run struct {
		name  string
		scale float64
	}
	seen := map[run]bool{}
	var points []sizePoint
	for i := len(reports) - 1; i >= 0; i-- {
		r := reports[i]
		for _, sc := range sizeScenarios() {
			s, ok := r.scenario(sc.name)
			if !ok || r.Scale < minScale || seen[run{sc.name, r.Scale}] {
				continue
			}
			if p, ok := sizePointOf(s, sc.when); ok {
				seen[run{sc.name, r.Scale}] = true
				p.source = r.source()
				points = append(points, p)
			}
		}
	}
	slices.SortFunc(points, func(a, b sizePoint) int { return cmp.Compare(a.workloads, b.workloads) })
	return points
}

// sizePointOf reads a point from a memory or scale scenario whose
// after-adoption figures end with when; false if any figure is missing.
func sizePointOf(s scenario, when string) (sizePoint, bool) {
	p := sizePoint{workloads: s.param("cachedDeployment"), objects: s.param("cachedConfigMap") + s.param("cachedSecret")}
	all := p.workloads > 0
	for name, v := range map[string]*float64{
		"peak RSS (VmHWM) at /readyz": &p.readyPeak,
		"peak RSS (VmHWM) " + when:    &p.adoptedPeak,
		"peak RSS (VmHWM) at end":     &p.endPeak,
		"heap in use " + when:         &p.adoptedHeap,
	} {
		var ok bool
		*v, ok = s.figure(name)
		all = all && ok
	}
	return p, all
}

// sizingGuide is the peak RSS in MiB that docs/benchmarks.md's sizing
// guide predicts: 35 MiB, plus 2 KB per cached ConfigMap or Secret and 5 KB
// per watched workload.
func sizingGuide(workloads, objects float64) float64 {
	return 35 + (2000*objects+5000*workloads)/(1<<20)
}

// curve is one line of a plot.
type curve struct {
	label  string
	xs, ys []float64
}

// rollCurves returns the rolls over time of each round of a fan-out,
// labelled with the round's settings.
func rollCurves(s scenario) []curve {
	var out []curve
	for _, se := range s.seriesWithPrefix(rollSeriesPrefix) {
		c := curve{label: roundLabel(strings.TrimPrefix(se.Name, rollSeriesPrefix))}
		for i, v := range se.Values {
			c.xs = append(c.xs, float64(i)*se.Step)
			c.ys = append(c.ys, v)
		}
		out = append(out, c)
	}
	return out
}

// roundLabel turns a round's name suffix, " (settings)", into its legend:
// the settings, or "no waves, no pacing" for the first round.
func roundLabel(suffix string) string {
	s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(suffix), "("), ")")
	if s == "" {
		return "no waves, no pacing"
	}
	return s
}

// latencyCurves returns each latency distribution of the latency scenario
// as a cumulative distribution: x the latency in ms, y the share of
// updates rolled within it.
func latencyCurves(s scenario) []curve {
	var out []curve
	for _, se := range s.Series {
		if se.X != "quantile" || !strings.Contains(se.Name, latencySuffix) {
			continue
		}
		c := curve{label: strings.Replace(se.Name, latencySuffix, "", 1)}
		for i, v := range se.Values {
			c.xs = append(c.xs, v)
			c.ys = append(c.ys, float64(i)*se.Step)
		}
		out = append(out, c)
	}
	return out
}
