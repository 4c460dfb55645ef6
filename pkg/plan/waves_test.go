package plan

import (
	"slices"
	"testing"
	"time"
)

func TestParseWavesAndSizes(t *testing.T) {
	tests := []struct {
		value   string
		n       int
		want    []int
		wantErr bool
	}{
		{"", 50, nil, false},
		{"1,10%,100%", 50, []int{1, 6, 50}, false}, // 1, then 5, then 44
		{"1,10%,100%", 5, []int{1, 2, 5}, false},
		{"1,10%,100%", 1000, []int{1, 101, 1000}, false},
		{"3,100%", 2, []int{2, 2}, false},
		{"50%,100%", 3, []int{2, 3}, false},
		{"1,2,3,100%", 4, []int{1, 3, 4, 4}, false},
		{"100%", 7, []int{7}, false},
		{"0,abc", 10, nil, true},
		{"1,10%", 10, nil, true},
		{"1,0%,100%", 10, nil, true},
		{"1,101%,100%", 10, nil, true},
		{"-1,100%", 10, nil, true},
		{"1,,100%", 10, nil, true},
		{" 1,100%", 10, nil, true},
	}
	for _, tt := range tests {
		steps, err := ParseWaves(tt.value)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseWaves(%q) error = %v, want error %v", tt.value, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got := CalculateWaveSizes(steps, tt.n); !slices.Equal(got, tt.want) && !(len(got) == 0 && tt.want == nil) {
			t.Errorf("sizes of %q for %d = %v, want %v", tt.value, tt.n, got, tt.want)
		}
	}
}

func TestWaveOf(t *testing.T) {
	sizes := []int{1, 6, 50}
	for pos, want := range map[int]int{0: 0, 1: 1, 5: 1, 6: 2, 49: 2} {
		if got := WaveOf(pos, sizes); got != want {
			t.Errorf("waveOf(%d) = %d, want %d", pos, got, want)
		}
	}
}

func TestParseWavePriority(t *testing.T) {
	tests := []struct {
		annotations map[string]string
		want        int
		wantErr     bool
	}{
		{nil, 0, false},
		{map[string]string{AnnotationWavePriority: "3"}, 3, false},
		{map[string]string{AnnotationWavePriority: "0"}, 0, false},
		{map[string]string{AnnotationWavePriority: "-1"}, 0, true},
		{map[string]string{AnnotationWavePriority: "high"}, 0, true},
	}
	for _, tt := range tests {
		got, err := ParseWavePriority(tt.annotations)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseWavePriority(%v) = %d, %v", tt.annotations, got, err)
		}
	}
}

func TestParseRollLimit(t *testing.T) {
	tests := []struct {
		value   string
		want    RollLimit
		wantErr bool
	}{
		{"", RollLimit{}, false},
		{"3/1m", RollLimit{3, time.Minute}, false},
		{"10/30s", RollLimit{10, 30 * time.Second}, false},
		{"0/1m", RollLimit{}, true},
		{"3", RollLimit{}, true},
		{"3/", RollLimit{}, true},
		{"x/1m", RollLimit{}, true},
		{"3/-1m", RollLimit{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRollLimit(tt.value)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseRollLimit(%q) = %+v, %v", tt.value, got, err)
		}
	}
}
