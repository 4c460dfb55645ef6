package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

const (
	// rerollStopGrace is how long reroll gets to finish in-flight syncs
	// after SIGTERM; its own sync timeout is 20s.
	rerollStopGrace = 30 * time.Second
	// addressTimeout bounds the wait for reroll to log its server address.
	addressTimeout = 30 * time.Second
	// readyPoll is how often /readyz is polled: often enough for a useful
	// resolution, rarely enough not to load a 2-core machine.
	readyPoll = 25 * time.Millisecond
	// metricsPoll is how often /metrics is polled while waiting for the
	// queue to drain.
	metricsPoll = 100 * time.Millisecond
	// queueName is the name label of reroll's workqueue metrics.
	queueName = "reroll"
)

// reroll is a running controller process, measured from outside.
type reroll struct {
	proc    *process
	started time.Time
	addr    string // host:port of its metrics, probe and pprof server
	logPath string
	hc      *http.Client
}

// startReroll starts the controller against the scenario's cluster with
// one server for metrics, probes and (with --profile-dir) pprof on a free
// loopback port, and waits until it has logged that server's address.
// The process is stopped when the scenario ends, if not before.
func (e *env) startReroll(ctx context.Context, label string, args ...string) (*reroll, error) {
	logPath := filepath.Join(e.dir, "reroll-"+label+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	full := []string{
		"--kubeconfig=" + e.cluster.info.Kubeconfig,
		"--controller-namespace=default",
		"--metrics-bind-address=127.0.0.1:0",
		"--health-probe-bind-address=127.0.0.1:0",
	}
	if e.prof != nil {
		full = append(full, "--profiling")
	}
	full = append(full, args...)
	full = append(full, e.opts.controllerArgs...)
	cmd := exec.Command(e.opts.controller, full...)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	cmd.Env = append(cmd.Env, e.opts.controllerEnv...)
	started := time.Now()
	p, err := startProcess("reroll", cmd)
	pw.Close() // the child has its own copy; EOF comes when it exits
	if err != nil {
		pr.Close()
		logFile.Close()
		return nil, err
	}
	r := &reroll{proc: p, started: started, logPath: logPath, hc: &http.Client{Timeout: 10 * time.Second}}
	e.onCleanup(func() { r.stop() })
	addrs := make(chan string, 1)
	go copyLog(pr, logFile, addrs)

	e.log.printf("started reroll %s (pid %d): %v", label, p.pid(), slices.Concat(args, e.opts.controllerArgs))
	timer := time.NewTimer(addressTimeout)
	defer timer.Stop()
	select {
	case r.addr = <-addrs:
		return r, nil
	case <-p.done:
		return nil, fmt.Errorf("reroll exited at start-up: %v\n%s", p.err, logTail(logPath, 30))
	case <-timer.C:
		return nil, fmt.Errorf("reroll did not log its server address within %s\n%s", addressTimeout, logTail(logPath, 30))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// copyLog copies reroll's output to its log file until the process exits,
// and sends the address of its first "Serving" line on addrs.
func copyLog(r io.ReadCloser, logFile *os.File, addrs chan<- string) {
	defer r.Close()
	defer logFile.Close()
	serving := regexp.MustCompile(`"Serving" address="([^"]+)"`)
	sent := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = fmt.Fprintf(logFile, "%s\n", line)
		if m := serving.FindSubmatch(line); m != nil && !sent {
			addrs <- string(m[1])
			sent = true
		}
	}
}

// stop stops reroll (SIGTERM, SIGKILL after a grace period) and returns how
// long it took to exit. Stopping it twice does nothing.
func (r *reroll) stop() (time.Duration, bool) {
	return r.proc.stop(rerollStopGrace)
}

// pid returns reroll's process id.
func (r *reroll) pid() int {
	return r.proc.pid()
}

// get fetches path from reroll's server and returns the status and body.
func (r *reroll) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// waitReady polls /readyz until it answers 200 and returns the time from
// the process start until then.
func (r *reroll) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		code, _, err := r.get(ctx, "/readyz")
		if err == nil && code == http.StatusOK {
			return time.Since(r.started), nil
		}
		select {
		case <-r.proc.done:
			return 0, fmt.Errorf("reroll exited before it was ready: %v\n%s", r.proc.err, logTail(r.logPath, 30))
		case <-deadline.C:
			return 0, fmt.Errorf("reroll not ready within %s (last: %d %v)", timeout, code, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// metrics scrapes reroll's /metrics.
func (r *reroll) metrics(ctx context.Context) (metricSet, error) {
	code, body, err := r.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", code)
	}
	return parseMetrics(string(body))
}

// queueActivity is what changes while reroll works on its queue.
type queueActivity struct {
	depth float64 // keys waiting (not counting debounced keys not yet due)
	adds  float64 // keys added so far
	syncs float64 // syncs finished so far
}

// activityOf extracts the queue activity from a scrape.
func activityOf(m metricSet) queueActivity {
	return queueActivity{
		depth: m.sum("workqueue_depth", "name", queueName),
		adds:  m.sum("workqueue_adds_total", "name", queueName),
		syncs: m.sum("reroll_sync_duration_seconds_count"),
	}
}

// waitQuiet polls /metrics until the queue is empty and neither adds nor
// syncs have changed for quiet (which must exceed the debounce delay, since
// debounced keys are counted only once they are due). It returns when the
// last activity was seen and the last scrape.
func (r *reroll) waitQuiet(ctx context.Context, quiet, timeout time.Duration) (time.Time, metricSet, error) {
	deadline := time.Now().Add(timeout)
	var last queueActivity
	lastChange := time.Now()
	first := true
	for {
		m, err := r.metrics(ctx)
		if err != nil {
			return time.Time{}, nil, err
		}
		now := time.Now()
		a := activityOf(m)
		if first || a != last || a.depth > 0 {
			lastChange, last, first = now, a, false
		} else if now.Sub(lastChange) >= quiet {
			return lastChange, m, nil
		}
		if now.After(deadline) {
			return time.Time{}, nil, fmt.Errorf("reroll's queue not quiet within %s (depth %v, adds %v, syncs %v)", timeout, a.depth, a.adds, a.syncs)
		}
		select {
		case <-r.proc.done:
			return time.Time{}, nil, fmt.Errorf("reroll exited: %v\n%s", r.proc.err, logTail(r.logPath, 30))
		case <-ctx.Done():
			return time.Time{}, nil, ctx.Err()
		case <-time.After(metricsPoll):
		}
	}
}

// memory returns reroll's peak and current RSS, in bytes.
func (r *reroll) memory() (hwm, rss uint64, err error) {
	return memStatus(r.pid())
}

// cpu returns the CPU seconds reroll has used.
func (r *reroll) cpu() (float64, error) {
	return cpuSeconds(r.pid())
}

// liveHeap forces a garbage collection in reroll (which needs --profiling)
// and returns the bytes of heap objects left: the live heap, which unlike
// the heap in use does not depend on when the GC last ran.
func (r *reroll) liveHeap(ctx context.Context) (uint64, error) {
	code, body, err := r.get(ctx, "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET /debug/pprof/heap: %d (is --profiling on?)", code)
	}
	return parseHeapAlloc(string(body))
}

// heapAllocLine is the line of a text heap profile (debug=1) that holds
// runtime.MemStats.HeapAlloc.
var heapAllocLine = regexp.MustCompile(`(?m)^# HeapAlloc = (\d+)$`)

// parseHeapAlloc returns the HeapAlloc of a text heap profile.
func parseHeapAlloc(profile string) (uint64, error) {
	m := heapAllocLine.FindStringSubmatch(profile)
	if m == nil {
		return 0, errors.New("no HeapAlloc in the heap profile")
	}
	return strconv.ParseUint(m[1], 10, 64)
}
