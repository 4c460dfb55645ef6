package main

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// sizeRun returns a report of one memory-measuring scenario at a scale,
// with workloads cached Deployments and a peak RSS at the end of peak.
func sizeRun(file, name, when string, scale float64, started int64, workloads, peak float64) report {
	s := scenario{Name: name, Params: map[string]any{"cachedDeployment": workloads, "cachedConfigMap": 3 * workloads, "cachedSecret": 2 * workloads},
		Figures: []figure{
			{Name: "peak RSS (VmHWM) at /readyz", Value: 1},
			{Name: "peak RSS (VmHWM) " + when, Value: 2},
			{Name: "heap in use " + when, Value: 3},
			{Name: "peak RSS (VmHWM) at end", Value: peak},
		}}
	r := report{file: file, StartedAt: time.Unix(started, 0), Scale: scale, Scenarios: []scenario{s}}
	r.Reroll.Version = "v"
	return r
}

// TestMemoryBySize checks which runs the memory plot takes: the newest of
// each scenario and scale, none below the minimum scale, none that failed,
// none without every figure; ordered by workloads, with figures read under
// each scenario's names.
func TestMemoryBySize(t *testing.T) {
	failed := sizeRun("failed.json", "scale", "after adoption", 1, 9, 10000, 999)
	failed.Scenarios[0].Error = "boom"
	partial := sizeRun("partial.json", "scale", "after adoption", 0.5, 8, 5000, 999)
	partial.Scenarios[0].Figures = partial.Scenarios[0].Figures[:3]
	reports := []report{
		sizeRun("old-memory.json", "memory", "after sync", 1, 1, 1000, 50),
		sizeRun("scale.json", "scale", "after adoption", 1, 2, 10000, 200),
		sizeRun("half.json", "scale", "after adoption", 0.5, 3, 5000, 110),
		sizeRun("quick.json", "scale", "after adoption", 0.1, 4, 1000, 30),
		sizeRun("memory.json", "memory", "after sync", 1, 5, 1000, 57),
		partial,
		failed,
	}
	points := memoryBySize(reports, 0.5)
	var got []string
	for _, p := range points {
		got = append(got, p.source)
	}
	want := []string{"memory.json (reroll v)", "half.json (reroll v)", "scale.json (reroll v)"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sources %q, want %q", got, want)
	}
	p := points[2]
	if p.workloads != 10000 || p.objects != 50000 || p.readyPeak != 1 || p.adoptedPeak != 2 || p.adoptedHeap != 3 || p.endPeak != 200 {
		t.Errorf("scale point %+v", p)
	}
	if points[0].endPeak != 57 || points[0].adoptedPeak != 2 {
		t.Errorf("memory point %+v: the newest, read under its own names", points[0])
	}
}

// TestSizingGuide checks the guide against what docs/benchmarks.md says it
// predicts: 58 MiB for the memory scenario, 182 MiB for the scale one.
func TestSizingGuide(t *testing.T) {
	for _, c := range []struct{ workloads, objects, want float64 }{{1000, 9297, 58}, {10010, 52011, 182}} {
		if got := sizingGuide(c.workloads, c.objects); math.Round(got) != c.want {
			t.Errorf("sizingGuide(%v, %v) = %.1f, want about %v", c.workloads, c.objects, got, c.want)
		}
	}
}

// TestRollCurves checks the fan-out's curves: only the rolls-over-time
// series, x from the step, legends from the rounds' settings.
func TestRollCurves(t *testing.T) {
	s := scenario{Series: []series{
		{Name: "rolled since the change", Step: 0.1, Values: []float64{0, 3, 5}},
		{Name: "floor latency", X: "quantile", Step: 0.5, Values: []float64{1, 2, 3}},
		{Name: "rolled since the change (waves 1,10%,100%, --max-rollouts-per-second=50)", Step: 0.5, Values: []float64{0, 1}},
	}}
	want := []curve{
		{label: "no waves, no pacing", xs: []float64{0, 0.1, 0.2}, ys: []float64{0, 3, 5}},
		{label: "waves 1,10%,100%, --max-rollouts-per-second=50", xs: []float64{0, 0.5}, ys: []float64{0, 1}},
	}
	if got := rollCurves(s); !reflect.DeepEqual(got, want) {
		t.Errorf("rollCurves = %+v, want %+v", got, want)
	}
}

// TestLatencyCurves checks the latency plot's curves: each quantile
// series turned into a cumulative distribution, the rest left out.
func TestLatencyCurves(t *testing.T) {
	s := scenario{Series: []series{
		{Name: "reroll latency (--debounce=0)", X: "quantile", Step: 0.5, Values: []float64{4, 6, 20}},
		{Name: "rolled since the change", X: "seconds since the change", Step: 0.1, Values: []float64{0, 1}},
		{Name: "floor latency", X: "quantile", Step: 0.5, Values: []float64{5, 7, 30}},
	}}
	want := []curve{
		{label: "reroll (--debounce=0)", xs: []float64{4, 6, 20}, ys: []float64{0, 0.5, 1}},
		{label: "floor", xs: []float64{5, 7, 30}, ys: []float64{0, 0.5, 1}},
	}
	if got := latencyCurves(s); !reflect.DeepEqual(got, want) {
		t.Errorf("latencyCurves = %+v, want %+v", got, want)
	}
}

// TestLoadReports checks that reports are read from the directory only,
// or from the files named, oldest first, and that newest respects the
// minimum scale.
func TestLoadReports(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"b.json":     `{"startedAt":"2026-12-01T00:00:00Z","scale":1,"reroll":{"version":"b"},"scenarios":[{"name":"fanout"}]}`,
		"a.json":     `{"startedAt":"2026-12-02T00:00:00Z","scale":0.1,"reroll":{"version":"a"},"scenarios":[{"name":"fanout"}]}`,
		"notes.txt":  `not a report`,
		"sub/c.json": `{"startedAt":"2026-12-03T00:00:00Z","scale":1}`,
	}
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reports, err := loadReports(dir, nil)
	if err != nil || len(reports) != 2 || reports[0].file != "b.json" || reports[1].file != "a.json" {
		t.Fatalf("loadReports: %+v, %v; want b.json then a.json", reports, err)
	}
	hasFanout := func(r report) bool { _, ok := r.scenario("fanout"); return ok }
	if r, ok := newest(reports, 0.5, hasFanout); !ok || r.Reroll.Version != "b" {
		t.Errorf("newest at scale 0.5 or more: %+v, %v; want b", r, ok)
	}
	if reports, err = loadReports(dir, []string{"a.json"}); err != nil || len(reports) != 1 || reports[0].source() != "a.json (reroll a)" {
		t.Errorf("loadReports(a.json): %+v, %v", reports, err)
	}
}

// TestFormatting checks the helpers of the plots' text and ticks.
func TestFormatting(t *testing.T) {
	if got := thousands(10010); got != "10,010" {
		t.Errorf("thousands(10010) = %q", got)
	}
	if got := thousands(455); got != "455" {
		t.Errorf("thousands(455) = %q", got)
	}
	if got := wrap([]string{"aaaa", "bbbb", "cccc"}, 10); got != "aaaa, bbbb,\ncccc" {
		t.Errorf("wrap = %q", got)
	}
	var values []float64
	for _, tk := range niceTicks(0, 205) {
		values = append(values, tk.Value)
	}
	if want := []float64{0, 50, 100, 150, 200}; !reflect.DeepEqual(values, want) {
		t.Errorf("niceTicks(0, 205) at %v, want %v", values, want)
	}
}
