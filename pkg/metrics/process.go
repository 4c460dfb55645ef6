package metrics

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	runtimemetrics "runtime/metrics"
	"strconv"
)

// RegisterProcessMetrics registers the Go runtime and process metrics that
// Prometheus' own client exposes by default, with the same names, so the
// usual dashboards work. All are computed at scrape time:
//
//   - go_goroutines
//   - go_memstats_heap_alloc_bytes, go_memstats_heap_inuse_bytes, read from
//     runtime/metrics, which unlike runtime.ReadMemStats does not stop the
//     world
//   - process_cpu_seconds_total, user plus system time from getrusage
//     (Unix only)
//   - process_resident_memory_bytes, from /proc/self/statm (Linux only)
//   - process_start_time_seconds, from /proc (Linux only); it cannot change,
//     so it is read once here rather than on every scrape
//
// A metric whose source this platform lacks is not registered at all, so
// it is absent rather than reported as a misleading zero. Calling this twice
// on one registry panics, like any duplicate registration.
func (r *Registry) RegisterProcessMetrics() {
	r.NewGaugeFunc("go_goroutines", "Number of goroutines that currently exist.",
		func() float64 { return float64(runtime.NumGoroutine()) })

	r.NewGaugeFunc("go_memstats_heap_alloc_bytes",
		"Number of heap bytes allocated and currently in use, including unreachable objects not yet swept.",
		func() float64 { return float64(readRuntimeBytes(heapObjectsMetric)) })
	r.NewGaugeFunc("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.",
		func() float64 { return float64(readRuntimeBytes(heapObjectsMetric, heapUnusedMetric)) })

	if _, ok := cpuSeconds(); ok {
		r.newFuncFamily("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", counterType, nil,
			func(emit func(float64, ...string)) {
				if v, ok := cpuSeconds(); ok {
					emit(v)
				}
			})
	}
	if _, err := residentBytes(); err == nil {
		r.newFuncFamily("process_resident_memory_bytes", "Resident memory size in bytes.", gaugeType, nil,
			func(emit func(float64, ...string)) {
				// A failed read leaves the series out of this scrape
				// rather than reporting 0 bytes.
				if v, err := residentBytes(); err == nil {
					emit(v)
				}
			})
	}
	if start, err := startTimeSeconds(); err == nil {
		r.NewGaugeFunc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
			func() float64 { return start })
	}
}

// runtime/metrics names behind the go_memstats_heap_* gauges. HeapAlloc is
// the bytes in heap objects; HeapInuse is the bytes of in-use spans, which
// is objects plus the unused space inside those spans.
const (
	heapObjectsMetric = "/memory/classes/heap/objects:bytes"
	heapUnusedMetric  = "/memory/classes/heap/unused:bytes"
)

// readRuntimeBytes returns the sum of the named runtime/metrics byte
// counts, read together so the sum comes from one instant.
func readRuntimeBytes(names ...string) uint64 {
	samples := make([]runtimemetrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	runtimemetrics.Read(samples)
	var sum uint64
	for _, s := range samples {
		if s.Value.Kind() == runtimemetrics.KindUint64 {
			sum += s.Value.Uint64()
		}
	}
	return sum
}

// residentBytes reads the resident set size from /proc/self/statm, whose
// second field is resident pages.
func residentBytes() (float64, error) {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	fields := bytes.Fields(data)
	if len(fields) < 2 {
		return 0, errors.New("/proc/self/statm: too few fields")
	}
	pages, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return 0, err
	}
	return float64(pages) * float64(os.Getpagesize()), nil
}

// userHZ is the kernel's USER_HZ, the unit of times in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports; reading it properly
// (sysconf(_SC_CLK_TCK)) would need cgo. Prometheus' procfs assumes the same.
const userHZ = 100

// startTimeSeconds returns when this process started, in seconds since the
// Unix epoch: its start time in ticks after boot, from /proc/self/stat,
// plus the boot time from /proc/stat.
func startTimeSeconds() (float64, error) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	ticks, err := parseStartTicks(stat)
	if err != nil {
		return 0, err
	}
	procStat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	boot, err := parseBootTime(procStat)
	if err != nil {
		return 0, err
	}
	return float64(boot) + float64(ticks)/userHZ, nil
}

// parseStartTicks returns field 22 of a /proc/<pid>/stat line, starttime:
// clock ticks from boot to the process' start.
func parseStartTicks(stat []byte) (uint64, error) {
	// The command name (field 2) is in parentheses and may itself contain
	// spaces and parentheses, so split after its last ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("/proc/self/stat: no command name")
	}
	fields := bytes.Fields(stat[end+1:]) // fields[0] is field 3, state
	const startTimeField = 22
	if len(fields) <= startTimeField-3 {
		return 0, errors.New("/proc/self/stat: too few fields")
	}
	return strconv.ParseUint(string(fields[startTimeField-3]), 10, 64)
}

// parseBootTime returns the "btime" line of /proc/stat: when the machine
// booted, in seconds since the Unix epoch.
func parseBootTime(procStat []byte) (uint64, error) {
	for line := range bytes.SplitSeq(procStat, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			return strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, errors.New("/proc/stat: no btime line")
}
