package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// report is the part of a bench results file (hack/tools/cmd/bench) the
// plots read.
type report struct {
	// file is the file's name in the results directory.
	file      string
	StartedAt time.Time `json:"startedAt"`
	Scale     float64   `json:"scale"`
	Reroll    struct {
		Version string `json:"version"`
	} `json:"reroll"`
	Scenarios []scenario `json:"scenarios"`
}

// scenario is one scenario's results.
type scenario struct {
	Name    string         `json:"name"`
	Params  map[string]any `json:"params"`
	Figures []figure       `json:"figures"`
	Series  []series       `json:"series"`
	Error   string         `json:"error"`
}

// figure is one measured number.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// series is a curve sampled at fixed steps: Values[i] is at x = i × Step.
type series struct {
	Name   string    `json:"name"`
	X      string    `json:"x"`
	Step   float64   `json:"step"`
	Unit   string    `json:"unit"`
	Values []float64 `json:"values"`
}

// loadReports reads the results files of dir (not of its subdirectories),
// or only those named in files when it is not empty, oldest first.
func loadReports(dir string, files []string) ([]report, error) {
	if len(files) == 0 {
		matches, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			files = append(files, filepath.Base(m))
		}
	}
	var reports []report
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		r := report{file: f}
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		reports = append(reports, r)
	}
	slices.SortStableFunc(reports, func(a, b report) int { return a.StartedAt.Compare(b.StartedAt) })
	return reports, nil
}

// scenario returns the scenario name of r, if it ran without an error.
func (r report) scenario(name string) (scenario, bool) {
	for _, s := range r.Scenarios {
		if s.Name == name && s.Error == "" {
			return s, true
		}
	}
	return scenario{}, false
}

// source names a report in a plot: its file and reroll's version.
func (r report) source() string {
	return r.file + " (reroll " + r.Reroll.Version + ")"
}

// figure returns the value of the figure name.
func (s scenario) figure(name string) (float64, bool) {
	for _, f := range s.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// param returns the numeric parameter name, or 0.
func (s scenario) param(name string) float64 {
	v, _ := s.Params[name].(float64)
	return v
}

// seriesWithPrefix returns the series whose names start with prefix, in
// the order they were recorded.
func (s scenario) seriesWithPrefix(prefix string) []series {
	var out []series
	for _, se := range s.Series {
		if strings.HasPrefix(se.Name, prefix) {
			out = append(out, se)
		}
	}
	return out
}

// newest returns the newest of reports, at scale minScale or more, for
// which has holds.
func newest(reports []report, minScale float64, has func(report) bool) (report, bool) {
	for i := len(reports) - 1; i >= 0; i-- {
		if reports[i].Scale >= minScale && has(reports[i]) {
			return reports[i], true
		}
	}
	return report{}, false
}
