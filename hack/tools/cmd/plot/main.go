// Command plot draws the plots of docs/benchmarks.md from the results
// files the bench writes (hack/tools/cmd/bench), as PNGs:
//
//   - memory-by-size.png: reroll's peak RSS and heap against the cluster
//     size, from the newest memory and scale scenario runs at each scale;
//   - fanout-rolls.png: a fan-out's rolls over time, with and without
//     waves and pacing, from the newest fanout run that recorded them;
//   - latency.png: the distribution of the time from a change to its roll,
//     reroll against the floor, from the newest latency run that recorded
//     it.
//
// Usage (what `make bench` runs after the benchmarks, and `make
// bench-plots` alone):
//
//	cd hack/tools && go run ./cmd/plot --results=<repo>/bench/results --out=<repo>/docs/img \
//	    [--files=a.json,b.json] [--min-scale=0.5]
//
// Only the files directly in --results are read (not bench/results/before
// or experiments), newest by their start time; runs below --min-scale, the
// quick ones, are left out. It prints which files each PNG was drawn from.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// options are the command-line flags.
type options struct {
	results, out string
	files        []string
	minScale     float64
}

// plotJob is one PNG: its file name, and what draws it from the reports.
// draw returns the sources it drew from, or none when the reports hold no
// data for it.
type plotJob struct {
	file string
	draw func(reports []report, minScale float64, path string) ([]string, error)
}

// plots returns every PNG the command draws.
func plots() []plotJob {
	return []plotJob{
		{"memory-by-size.png", plotMemory},
		{"fanout-rolls.png", plotRolls},
		{"latency.png", plotLatency},
	}
}

// main runs the command and exits with its exit code.
func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// parseFlags parses and checks the command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var files string
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.results, "results", "", "directory of the bench's results files (bench/results)")
	fs.StringVar(&o.out, "out", "", "directory for the PNGs (docs/img)")
	fs.StringVar(&files, "files", "", "comma-separated results files in --results to draw from; empty: all")
	fs.Float64Var(&o.minScale, "min-scale", 0.5, "leave out runs at a lower --scale (quick runs)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if o.results == "" || o.out == "" {
		errs = append(errs, errors.New("--results and --out are required"))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	if files != "" {
		o.files = strings.Split(files, ",")
	}
	return o, errors.Join(errs...)
}

// run draws every plot and returns the exit code: 1 when a plot failed,
// not when there was no data for one.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "plot: %v\n", err)
		return 2
	}
	reports, err := loadReports(o.results, o.files)
	if err == nil {
		err = os.MkdirAll(o.out, 0o755)
	}
	if err != nil {
		fmt.Fprintf(stderr, "plot: %v\n", err)
		return 1
	}
	code := 0
	for _, job := range plots() {
		path := filepath.Join(o.out, job.file)
		sources, err := job.draw(reports, o.minScale, path)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "plot: %s: %v\n", path, err)
			code = 1
		case len(sources) == 0:
			fmt.Fprintf(stdout, "%s: no results to draw it from; left as it was\n", path)
		default:
			fmt.Fprintf(stdout, "%s: from %s\n", path, strings.Join(sources, ", "))
		}
	}
	return code
}

// plotMemory draws memory against the cluster size, when at least two
// sizes ran.
func plotMemory(reports []report, minScale float64, path string) ([]string, error) {
	points := memoryBySize(reports, minScale)
	if len(points) < 2 {
		return nil, nil
	}
	var sources []string
	for _, p := range points {
		sources = append(sources, p.source)
	}
	return sources, drawMemory(points, path)
}

// plotRolls draws the newest fan-out's rolls over time.
func plotRolls(reports []report, minScale float64, path string) ([]string, error) {
	r, ok := newest(reports, minScale, func(r report) bool {
		s, ok := r.scenario("fanout")
		return ok && len(rollCurves(s)) > 0
	})
	if !ok {
		return nil, nil
	}
	s, _ := r.scenario("fanout")
	title := fmt.Sprintf("One change consumed by %s Deployments, reroll at 200 API requests/s", thousands(s.param("deployments")))
	sources := []string{r.source()}
	return sources, drawCurves(rollCurves(s), title, sources, "seconds since the change", "Deployments rolled", path)
}

// plotLatency draws the newest latency run's distributions.
func plotLatency(reports []report, minScale float64, path string) ([]string, error) {
	r, ok := newest(reports, minScale, func(r report) bool {
		s, ok := r.scenario("latency")
		return ok && len(latencyCurves(s)) > 0
	})
	if !ok {
		return nil, nil
	}
	s, _ := r.scenario("latency")
	title := fmt.Sprintf("Change to roll, %s updates each, interleaved: reroll against the floor", thousands(s.param("updates")))
	sources := []string{r.source()}
	return sources, drawCurves(latencyCurves(s), title, sources, "ms from the ConfigMap update's response to the roll's watch event", "share of updates rolled", path)
}
