package plan

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WaveStep is one item of a waves annotation: the size of one wave, as a
// count of consumers or a percentage of all of them.
type WaveStep struct {
	count   int
	percent int
}

// ParseWaves parses a waves annotation or --waves, such as "1,10%,100%":
// comma-separated wave sizes, each a count of at least 1 or a percentage
// from 1% to 100% of all the change's consumers, ending with 100%, which is
// every consumer left. "1,10%,100%" over 50 consumers rolls 1, then 5, then
// the other 44. Empty means no waves (every consumer at once). Anything
// else is an error, never a silent "all at once".
func ParseWaves(v string) ([]WaveStep, error) {
	if v == "" {
		return nil, nil
	}
	var steps []WaveStep
	for i, item := range strings.Split(v, ",") {
		var s WaveStep
		var err error
		if p, ok := strings.CutSuffix(item, "%"); ok {
			s.percent, err = strconv.Atoi(p)
			if err == nil && (s.percent < 1 || s.percent > 100) {
				err = fmt.Errorf("out of 1%%..100%%")
			}
		} else {
			s.count, err = strconv.Atoi(item)
			if err == nil && s.count < 1 {
				err = fmt.Errorf("less than 1")
			}
		}
		if err != nil {
			return nil, fmt.Errorf("item %d %q is not a count of at least 1 or a percentage from 1%% to 100%%", i+1, item)
		}
		steps = append(steps, s)
	}
	if last := steps[len(steps)-1]; last.percent != 100 {
		return nil, fmt.Errorf("%q must end with 100%%, so that every consumer rolls", v)
	}
	return steps, nil
}

// CalculateWaveSizes returns, for n consumers, how many consumers the
// waves up to each one hold together: each wave adds its own size (a
// percentage rounds up), capped at n, and the last wave holds them all.
func CalculateWaveSizes(steps []WaveStep, n int) []int {
	sizes := make([]int, len(steps))
	total := 0
	for i, s := range steps {
		size := s.count
		if s.percent > 0 {
			size = (s.percent*n + 99) / 100
		}
		total = min(total+size, n)
		if i == len(steps)-1 {
			total = n
		}
		sizes[i] = total
	}
	return sizes
}

// WaveOf returns the wave of the consumer at position pos (0-based) in the
// order of a change's consumers.
func WaveOf(pos int, sizes []int) int {
	for i, size := range sizes {
		if pos < size {
			return i
		}
	}
	return len(sizes) - 1
}

// ParseWavePriority parses AnnotationWavePriority: an integer of at least
// 0; absent means 0.
func ParseWavePriority(annotations map[string]string) (int, error) {
	v, ok := annotations[AnnotationWavePriority]
	if !ok {
		return 0, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 0 {
		return 0, fmt.Errorf("%s must be an integer of at least 0, not %q", AnnotationWavePriority, v)
	}
	return p, nil
}

// RollLimit is --max-rolls-per-workload: at most n rolls of one workload
// within window.
type RollLimit struct {
	N      int
	Window time.Duration
}

// ParseRollLimit parses --max-rolls-per-workload, "N/DURATION" such as
// "3/1m" (N at least 1, a positive Go duration). Empty means no limit.
func ParseRollLimit(v string) (RollLimit, error) {
	if v == "" {
		return RollLimit{}, nil
	}
	n, d, ok := strings.Cut(v, "/")
	count, err1 := strconv.Atoi(n)
	window, err2 := time.ParseDuration(d)
	if !ok || err1 != nil || err2 != nil || count < 1 || window <= 0 {
		return RollLimit{}, fmt.Errorf("--max-rolls-per-workload must be N/DURATION with N at least 1 and a positive duration, such as 3/1m, not %q", v)
	}
	return RollLimit{N: count, Window: window}, nil
}

// WavesOf returns the waves of a change of an object with annotations: its
// reroll.dev/waves annotation, parsed, or defaults (--waves) when it has
// none. An unparsable annotation is an error, never "all at once".
func WavesOf(annotations map[string]string, defaults []WaveStep) ([]WaveStep, error) {
	spec, ok := annotations[AnnotationWaves]
	if !ok {
		return defaults, nil
	}
	return ParseWaves(spec)
}
