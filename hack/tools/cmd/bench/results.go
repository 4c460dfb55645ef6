package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// target is what a figure should reach: value op bound.
type target struct {
	// Op is "<=", "==" or "~" (within Tolerance of Value, as a fraction).
	Op string `json:"op"`
	// Value is the bound, in the figure's unit.
	Value float64 `json:"value"`
	// Tolerance is the fraction of Value a "~" target allows either way.
	Tolerance float64 `json:"tolerance,omitempty"`
	// Note says where the bound comes from, e.g. "1.5 × floor p50".
	Note string `json:"note,omitempty"`
}

// met reports whether v reaches the target.
func (t target) met(v float64) bool {
	switch t.Op {
	case "<=":
		return v <= t.Value
	case "==":
		return v == t.Value
	case "~":
		return math.Abs(v-t.Value) <= t.Tolerance*t.Value
	}
	return false
}

// String formats the target for the table.
func (t target) String() string {
	op := map[string]string{"<=": "≤", "==": "=", "~": "≈"}[t.Op]
	s := op + " " + formatNumber(t.Value)
	if t.Op == "~" {
		s += fmt.Sprintf(" ± %.0f%%", 100*t.Tolerance)
	}
	if t.Note != "" {
		s += " (" + t.Note + ")"
	}
	return s
}

// figure is one measured number. Figures are reported, never asserted:
// Met only says whether the run reached the target.
type figure struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target *target `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

// scenarioResult is everything one scenario measured.
type scenarioResult struct {
	Name string `json:"name"`
	// Params are the object counts and settings the scenario ran with.
	Params map[string]any `json:"params"`
	// Figures are in the order they were measured.
	Figures []figure `json:"figures"`
	// Series are measurements with more than one value, for plots
	// (hack/tools/cmd/plot).
	Series []series `json:"series,omitempty"`
	// Notes explain figures that need it.
	Notes []string `json:"notes,omitempty"`
	// Error is why the scenario stopped early, if it did; the figures
	// measured before are kept.
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// add records a figure without a target.
func (r *scenarioResult) add(name string, value float64, unit string) {
	r.Figures = append(r.Figures, figure{Name: name, Value: value, Unit: unit})
}

// addTarget records a figure and whether it reached its target.
func (r *scenarioResult) addTarget(name string, value float64, unit string, t target) {
	met := t.met(value)
	r.Figures = append(r.Figures, figure{Name: name, Value: value, Unit: unit, Target: &t, Met: &met})
}

// series is a curve sampled at fixed steps: Values[i] is its value at
// x = i × Step, in Unit.
type series struct {
	Name string `json:"name"`
	// X says what x is, e.g. "seconds since the change" or "quantile".
	X      string    `json:"x"`
	Step   float64   `json:"step"`
	Unit   string    `json:"unit"`
	Values []float64 `json:"values"`
}

// addSeries records a series.
func (r *scenarioResult) addSeries(s series) {
	r.Series = append(r.Series, s)
}

// note records an explanation.
func (r *scenarioResult) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// machineInfo describes where the bench ran.
type machineInfo struct {
	Cores       int    `json:"cores"`
	MemoryBytes uint64 `json:"memoryBytes"`
	CPUModel    string `json:"cpuModel,omitempty"`
	Kernel      string `json:"kernel,omitempty"`
	GoVersion   string `json:"goVersion"`
}

// report is the JSON document a run writes.
type report struct {
	Date           string           `json:"date"`
	StartedAt      time.Time        `json:"startedAt"`
	Seconds        float64          `json:"seconds"`
	Scale          float64          `json:"scale"`
	CommandLine    []string         `json:"commandLine"`
	Profiled       bool             `json:"profiled"`
	ControllerEnv  []string         `json:"controllerEnv,omitempty"`
	ControllerArgs []string         `json:"controllerArgs,omitempty"`
	Machine        machineInfo      `json:"machine"`
	ControlPlane   string           `json:"controlPlaneVersion"`
	Reroll         rerollInfo       `json:"reroll"`
	Scenarios      []scenarioResult `json:"scenarios"`
}

// rerollInfo identifies the controller binary measured.
type rerollInfo struct {
	Binary    string `json:"binary"`
	Version   string `json:"version"`
	GoVersion string `json:"goVersion,omitempty"`
}

// printTable writes every figure of every scenario with its target.
func printTable(w io.Writer, rep *report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tRESULT\tTARGET\tMET")
	for _, s := range rep.Scenarios {
		for _, f := range s.Figures {
			tgt, met := "", ""
			if f.Target != nil {
				tgt = f.Target.String() + " " + f.Unit
				met = "no"
				if *f.Met {
					met = "yes"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\n", s.Name, f.Name, formatNumber(f.Value), f.Unit, tgt, met)
		}
		if s.Error != "" {
			fmt.Fprintf(tw, "%s\tERROR\t%s\t\t\n", s.Name, firstLine(s.Error))
		}
	}
	tw.Flush()
	for _, s := range rep.Scenarios {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "note (%s): %s\n", s.Name, n)
		}
	}
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// formatNumber prints integers as such and other numbers with three
// significant digits (at least one decimal).
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	digits := 3 - int(math.Floor(math.Log10(math.Abs(v)))) - 1
	digits = max(1, min(digits, 6))
	return strconv.FormatFloat(v, 'f', digits, 64)
}

// writeReport writes the report to dir/<date>.json (or, for a scale other
// than 1, dir/<date>-scale-<scale>.json, so a quick run does not replace a
// full one) and returns the path.
func writeReport(dir string, rep *report) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := rep.Date
	if rep.Scale != 1 {
		name += "-scale-" + strconv.FormatFloat(rep.Scale, 'f', -1, 64)
	}
	path := filepath.Join(dir, name+".json")
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(compactNumberLists(data), '\n'), 0o644)
}

// numberList matches a list of numbers as MarshalIndent writes it: one
// number a line. A raw newline cannot occur inside a JSON string, so no
// string is ever matched.
var numberList = regexp.MustCompile(`\[\n\s*-?[0-9][-+.0-9eE]*(?:,\n\s*-?[0-9][-+.0-9eE]*)*\n\s*\]`)

// compactNumberLists puts every list of numbers of indented JSON on one
// line, so that a series of hundreds of values is one line of the file.
func compactNumberLists(data []byte) []byte {
	return numberList.ReplaceAllFunc(data, func(list []byte) []byte {
		return bytes.Join(bytes.Fields(list), nil)
	})
}

// percentile returns the p-th percentile (nearest rank) of values, or 0
// when there are none.
func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(values))
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank-1, 0)]
}

// mib converts bytes to MiB.
func mib(b uint64) float64 {
	return float64(b) / (1 << 20)
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
