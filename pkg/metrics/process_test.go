package metrics

import (
	"runtime"
	"testing"
	"time"
)

// TestProcessMetrics checks the process and Go runtime metrics are present
// with plausible values; the /proc ones only on Linux.
func TestProcessMetrics(t *testing.T) {
	r := NewRegistry()
	r.RegisterProcessMetrics()
	_, e := mustParse(t, r)

	if got := e.value(t, "go_goroutines"); got < 1 {
		t.Errorf("go_goroutines = %v", got)
	}
	alloc, inuse := e.value(t, "go_memstats_heap_alloc_bytes"), e.value(t, "go_memstats_heap_inuse_bytes")
	if alloc <= 0 || inuse <= 0 {
		t.Errorf("heap alloc = %v, inuse = %v; want both positive", alloc, inuse)
	}
	if e.types["process_cpu_seconds_total"] != "counter" && runtime.GOOS != "windows" {
		t.Errorf("process_cpu_seconds_total type = %q, want counter", e.types["process_cpu_seconds_total"])
	}
	if runtime.GOOS != "linux" {
		return
	}
	if got := e.value(t, "process_resident_memory_bytes"); got < 1<<20 {
		t.Errorf("process_resident_memory_bytes = %v, want at least 1 MiB", got)
	}
	if got := e.value(t, "process_cpu_seconds_total"); got <= 0 {
		t.Errorf("process_cpu_seconds_total = %v, want > 0", got)
	}
	now := float64(time.Now().UnixNano()) / 1e9
	if start := e.value(t, "process_start_time_seconds"); start > now+1 || start < now-3600 {
		t.Errorf("process_start_time_seconds = %v, now is %v", start, now)
	}
}

// TestRegisterProcessMetricsTwicePanics checks the second call is treated
// like any duplicate registration.
func TestRegisterProcessMetricsTwicePanics(t *testing.T) {
	r := NewRegistry()
	r.RegisterProcessMetrics()
	mustPanic(t, `"go_goroutines" is already registered`, r.RegisterProcessMetrics)
}

// TestParseStartTicks checks field 22 is found even when the command name
// contains spaces and parentheses.
func TestParseStartTicks(t *testing.T) {
	stat := "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 7 0 123456 1000000 200 18446744073709551615"
	got, err := parseStartTicks([]byte(stat))
	if err != nil || got != 123456 {
		t.Errorf("parseStartTicks = %v, %v; want 123456", got, err)
	}
	if _, err := parseStartTicks([]byte("1 (x) S 1 2")); err == nil {
		t.Error("want an error for a short line")
	}
	if _, err := parseStartTicks([]byte("garbage")); err == nil {
		t.Error("want an error without a command name")
	}
}

// TestParseBootTime checks the btime line is found among the others.
func TestParseBootTime(t *testing.T) {
	got, err := parseBootTime([]byte("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"))
	if err != nil || got != 1700000000 {
		t.Errorf("parseBootTime = %v, %v; want 1700000000", got, err)
	}
	if _, err := parseBootTime([]byte("cpu 1\n")); err == nil {
		t.Error("want an error without btime")
	}
}
