// Command bench measures reroll on a local control plane: memory with a
// large amount of config data, roll latency against a floor, fan-out of one
// change to many workloads, restarts, CPU under churn, and start-up and
// adoption on a large cluster. Four more scenarios run only when named:
// memory-csi-baseline and memory-csi seed the memory scenario with the
// Secrets Store CSI driver's pod statuses and run reroll without and with
// --secrets-store-csi; memory-selector-baseline and memory-selector label
// a tenth of its ConfigMaps and Secrets and run reroll without and with
// --config-selector.
//
// Usage (what `make bench` runs):
//
//	cd hack/tools && go run ./cmd/bench --bin-dir=bin --controller=<repo>/bin/reroll \
//	    --scale=1.0 --out=<repo>/bench/results [--scenarios=memory,latency,fanout,restart,churn,storm,outage,scale] \
//	    [--profile-dir=DIR] [--controller-env=KEY=VALUE,...] [--keep]
//
// Every scenario gets a fresh localcluster (so one scenario's objects, and
// etcd's and kube-apiserver's memory of them, never load another), seeds it,
// runs reroll as a separate process and measures it from outside: its
// /proc/PID/status and /proc/PID/stat, its /metrics and /readyz, and watches
// on the API server. Every wait is a watch or a poll with a deadline. The
// figures are printed as a table and written to <out>/<date>.json; targets
// are printed beside them, never asserted. --scale multiplies object counts
// (and the churn duration) for a quick run. The controller binary is copied
// at start, so a rebuild during a run cannot mix two binaries in one result.
// See docs/benchmarks.md.
package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	binDir     string
	controller string
	// plugin is the kubectl-reroll binary the memory scenario times.
	plugin     string
	scale      float64
	outDir     string
	scenarios  []string
	profileDir string
	keep       bool
	// controllerEnv is added to reroll's environment only (not the
	// control plane's), e.g. GOMEMLIMIT=40MiB for an experiment.
	controllerEnv []string
	// controllerArgs are added to reroll's command line in every scenario,
	// after the scenario's own, e.g. --bake-time=0s for a baseline.
	controllerArgs []string
}

// scenario is one benchmark: it seeds its cluster, runs reroll and records
// figures in res.
type scenario struct {
	name string
	run  func(ctx context.Context, e *env, res *scenarioResult) error
	// withNodes starts the cluster with a kwok node, so Pods run and
	// rollouts complete.
	withNodes bool
	// onlyNamed leaves the scenario out of the default run: it runs only
	// when --scenarios names it.
	onlyNamed bool
}

// scenarios returns every scenario in the order they run.
func scenarios() []scenario {
	return []scenario{
		{"memory", runMemory, false, false},
		{"memory-csi-baseline", runMemoryCSIBaseline, false, true},
		{"memory-csi", runMemoryCSI, false, true},
		{"memory-selector-baseline", runMemorySelectorBaseline, false, true},
		{"memory-selector", runMemorySelector, false, true},
		{"latency", runLatency, false, false},
		{"fanout", runFanout, false, false},
		{"restart", runRestart, false, false},
		{"churn", runChurn, false, false},
		{"storm", runStorm, true, false},
		{"outage", runOutage, false, false},
		{"scale", runScale, false, false},
	}
}

// scenarioNames returns the names of every scenario, or with defaults only
// of those that run by default.
func scenarioNames(defaults bool) []string {
	var names []string
	for _, s := range scenarios() {
		if !defaults || !s.onlyNamed {
			names = append(names, s.name)
		}
	}
	return names
}

// logger prints timestamped progress lines to stderr.
type logger struct {
	w      io.Writer
	prefix string
	began  time.Time
	mu     *sync.Mutex
}

// printf prints one progress line.
func (l *logger) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "bench %6.1fs %s"+format+"\n", append([]any{time.Since(l.began).Seconds(), l.prefix}, args...)...)
}

// with returns a logger whose lines start with prefix.
func (l *logger) with(prefix string) *logger {
	c := *l
	c.prefix = prefix + ": "
	return &c
}

// env is what a scenario runs in: its cluster, a work directory, and the
// processes and watches to stop when it ends.
type env struct {
	opts     options
	scenario string
	dir      string
	log      *logger
	cluster  *cluster
	prof     *profiler
	cleanups []func()
}

// onCleanup registers fn to run when the scenario ends, in reverse order.
func (e *env) onCleanup(fn func()) {
	e.cleanups = append(e.cleanups, fn)
}

// scaled returns n times the scale, rounded, and at least least.
func (e *env) scaled(n, least int) int {
	return max(least, int(math.Round(float64(n)*e.opts.scale)))
}

// main runs the bench and exits with its exit code.
func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// parseFlags parses and checks the command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var names string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.binDir, "bin-dir", "bin", "directory with localcluster, etcd, kube-apiserver and kube-controller-manager (hack/build-control-plane.sh)")
	fs.StringVar(&o.controller, "controller", "", "the reroll binary to measure (make build: bin/reroll)")
	fs.StringVar(&o.plugin, "plugin", "", "the kubectl-reroll binary to time in the memory scenario (make build: bin/kubectl-reroll)")
	fs.Float64Var(&o.scale, "scale", 1.0, "multiplies object counts and the churn duration; 0.1 is a quick run")
	fs.StringVar(&o.outDir, "out", "", "directory for the results JSON (<date>.json)")
	fs.StringVar(&names, "scenarios", strings.Join(scenarioNames(true), ","), "comma-separated scenarios to run (memory-csi-baseline, memory-csi, memory-selector-baseline and memory-selector only when named)")
	fs.StringVar(&o.profileDir, "profile-dir", "", "run reroll with --profiling and save CPU and heap profiles of each scenario here")
	var controllerEnv string
	fs.StringVar(&controllerEnv, "controller-env", "", "comma-separated KEY=VALUE pairs added to reroll's environment only, e.g. GOMEMLIMIT=40MiB")
	fs.Func("controller-arg", "a flag added to reroll's command line in every scenario, after the scenario's own, e.g. --bake-time=0s (repeat for more)", func(v string) error {
		if !strings.HasPrefix(v, "--") {
			return fmt.Errorf("%q is not a flag (--name=value)", v)
		}
		o.controllerArgs = append(o.controllerArgs, v)
		return nil
	})
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (cluster state and logs) even when every scenario succeeded")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if controllerEnv != "" {
		for _, kv := range strings.Split(controllerEnv, ",") {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				errs = append(errs, fmt.Errorf("--controller-env: %q is not KEY=VALUE", kv))
			}
			o.controllerEnv = append(o.controllerEnv, kv)
		}
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	if o.controller == "" {
		errs = append(errs, errors.New("--controller is required"))
	}
	if o.outDir == "" {
		errs = append(errs, errors.New("--out is required"))
	}
	if !(o.scale > 0) {
		errs = append(errs, fmt.Errorf("--scale must be positive, not %v", o.scale))
	}
	for _, n := range strings.Split(names, ",") {
		switch {
		case !slices.Contains(scenarioNames(false), n):
			errs = append(errs, fmt.Errorf("--scenarios: unknown scenario %q; the scenarios are %s", n, strings.Join(scenarioNames(false), ", ")))
		case slices.Contains(o.scenarios, n):
			errs = append(errs, fmt.Errorf("--scenarios: %q is listed twice", n))
		default:
			o.scenarios = append(o.scenarios, n)
		}
	}
	for _, p := range []*string{&o.binDir, &o.controller, &o.outDir, &o.profileDir} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				errs = append(errs, err)
			}
			*p = abs
		}
	}
	for _, bin := range []string{filepath.Join(o.binDir, "localcluster"), o.controller} {
		if _, err := os.Stat(bin); err != nil && o.controller != "" {
			errs = append(errs, fmt.Errorf("%w (build with make build and hack/build-control-plane.sh)", err))
		}
	}
	return o, errors.Join(errs...)
}

// run runs the selected scenarios, prints the table and writes the JSON.
// It returns 1 when a scenario failed (not when a target was missed).
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := &logger{w: stderr, began: time.Now(), mu: &sync.Mutex{}}

	workDir, err := os.MkdirTemp("", "reroll-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	// Measure one binary throughout, even if it is rebuilt meanwhile.
	binary := o.controller
	if o.controller, err = snapshot(binary, filepath.Join(workDir, "reroll")); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	rep := newReport(ctx, o, args)
	rep.Reroll.Binary = binary
	log.printf("reroll %s (%s), scale %v, scenarios %s, work dir %s", rep.Reroll.Version, rep.Reroll.GoVersion, o.scale, strings.Join(o.scenarios, ","), workDir)

	failed := false
	for _, s := range scenarios() {
		if !slices.Contains(o.scenarios, s.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		res := runScenario(ctx, o, workDir, log, s, rep)
		if res.Error != "" {
			failed = true
			log.printf("%s FAILED: %s", s.name, res.Error)
		}
		rep.Scenarios = append(rep.Scenarios, res)
	}
	rep.Seconds = time.Since(rep.StartedAt).Seconds()

	fmt.Fprintf(stdout, "reroll %s on %d cores, %.1f GiB, control plane %s, scale %v\n\n",
		rep.Reroll.Version, rep.Machine.Cores, float64(rep.Machine.MemoryBytes)/(1<<30), rep.ControlPlane, rep.Scale)
	printTable(stdout, rep)
	path, err := writeReport(o.outDir, rep)
	if err != nil {
		fmt.Fprintf(stderr, "bench: writing results: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nresults: %s (%.0fs)\n", path, rep.Seconds)
	if failed || ctx.Err() != nil || o.keep {
		fmt.Fprintf(stderr, "bench: work directory (cluster state, logs) kept: %s\n", workDir)
	} else {
		_ = os.RemoveAll(workDir)
	}
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// runScenario starts a fresh cluster, runs one scenario in it, and stops
// every process the scenario started, whatever happened.
func runScenario(ctx context.Context, o options, workDir string, log *logger, s scenario, rep *report) (res scenarioResult) {
	res = scenarioResult{Name: s.name, Params: map[string]any{}}
	began := time.Now()
	e := &env{opts: o, scenario: s.name, dir: filepath.Join(workDir, s.name), log: log.with(s.name)}
	if o.profileDir != "" {
		e.prof = &profiler{dir: o.profileDir, scenario: s.name, log: e.log}
	}
	defer func() {
		for i := len(e.cleanups) - 1; i >= 0; i-- {
			e.cleanups[i]()
		}
		if err := e.prof.err(); err != nil && res.Error == "" {
			res.Error = err.Error()
		}
		res.Seconds = time.Since(began).Seconds()
		e.log.printf("done in %.0fs", res.Seconds)
	}()

	e.log.printf("starting a fresh localcluster")
	c, err := startCluster(ctx, o.binDir, filepath.Join(e.dir, "cluster"), s.withNodes)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	e.cluster = c
	e.onCleanup(c.stop)
	if rep.ControlPlane == "" {
		if v, err := c.client.Discovery().ServerVersion(); err == nil {
			rep.ControlPlane = v.GitVersion
		}
	}
	if err := s.run(ctx, e, &res); err != nil {
		res.Error = err.Error()
	}
	return res
}

// newReport fills in what the report says about the machine, the control
// plane and the controller binary.
func newReport(ctx context.Context, o options, args []string) *report {
	rep := &report{
		StartedAt:      time.Now(),
		Scale:          o.scale,
		CommandLine:    append([]string{"bench"}, args...),
		Profiled:       o.profileDir != "",
		ControllerEnv:  o.controllerEnv,
		ControllerArgs: o.controllerArgs,
		Machine: machineInfo{
			Cores:     runtime.NumCPU(),
			CPUModel:  cpuModel(),
			Kernel:    kernelRelease(),
			GoVersion: runtime.Version(),
		},
		Reroll: rerollInfo{Binary: o.controller},
	}
	rep.Date = rep.StartedAt.Format(time.DateOnly)
	rep.Machine.MemoryBytes, _ = memTotal()
	if info, err := buildinfo.ReadFile(o.controller); err == nil {
		rep.Reroll.GoVersion = info.GoVersion
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(vctx, o.controller, "--version").Output(); err == nil {
		rep.Reroll.Version = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "reroll"))
	}
	return rep
}

// snapshot copies the executable src to dst and returns dst.
func snapshot(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}
