// Command promcheck checks the PromQL of reroll's Helm chart and prints the
// metric names it uses. It renders charts/reroll with the dashboard and the
// PrometheusRule turned on (helm template, the Helm the Makefile pins),
// parses every expression of the Grafana dashboard and every alert with
// Prometheus' own parser, validates the rule groups as Prometheus loads
// them, and prints each metric name the expressions select, one a line,
// sorted. It exits non-zero, naming each, if any expression does not parse.
//
// Usage (the e2e suite's TestObservabilityMetricsExist compares its output
// with a live reroll's /metrics):
//
//	cd hack/tools && go run ./cmd/promcheck [--chart=<repo>/charts/reroll] [--helm=<path of helm>]
//
// Without --helm it uses $REROLL_BIN_DIR/helm where that exists (make helm
// installs it into hack/tools/bin), else `go run` of the Makefile's HELM.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// options are the command-line flags.
type options struct {
	chart, helm string
}

// main runs the command and exits with its exit code.
func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// parseFlags parses and checks the command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("promcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.chart, "chart", "", "the chart directory; empty: charts/reroll of the repository holding the working directory")
	fs.StringVar(&o.helm, "helm", "", "the helm binary; empty: $REROLL_BIN_DIR/helm if it exists, else go run of the Makefile's HELM")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return o, nil
}

// run is the command: it returns 0 when every expression parses and the
// names were printed, 1 on a check that failed, 2 on a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "promcheck:", err)
		}
		return 2
	}
	if o.chart == "" {
		root, err := repoRoot()
		if err != nil {
			fmt.Fprintln(stderr, "promcheck:", err)
			return 2
		}
		o.chart = chartDir(root)
	}
	helm, err := helmCommand(o.helm, o.chart)
	if err != nil {
		fmt.Fprintln(stderr, "promcheck:", err)
		return 2
	}
	r, err := renderChart(o.chart, helm, checkValues())
	if err != nil {
		fmt.Fprintln(stderr, "promcheck:", err)
		return 1
	}
	names, errs := check(r)
	for _, err := range errs {
		fmt.Fprintln(stderr, "promcheck:", err)
	}
	if len(errs) > 0 {
		return 1
	}
	for _, n := range names {
		fmt.Fprintln(stdout, n)
	}
	return 0
}
