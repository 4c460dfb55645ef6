//go:build !unix

package metrics

// cpuSeconds reports that CPU time is unavailable: getrusage(2) is Unix
// only, so RegisterProcessMetrics leaves process_cpu_seconds_total out.
func cpuSeconds() (float64, bool) { return 0, false }
