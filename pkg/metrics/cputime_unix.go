//go:build unix

package metrics

import "syscall"

// cpuSeconds returns the user plus system CPU time this process has used,
// from getrusage(2), which reports microseconds on every Unix, so there is
// no clock-tick unit to guess as with /proc/self/stat.
func cpuSeconds() (float64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9, true
}
