package metrics

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// exposition is a text-format scrape parsed and validated by
// parseExposition.
type exposition struct {
	// values holds every sample by its series as written, e.g.
	// `workqueue_adds_total{name="test"}`, so tests can look values up.
	values map[string]float64
	// types holds each family's TYPE.
	types map[string]string
}

// histogramGroup is the running state of one histogram series (one label
// set without le) while its lines are checked.
type histogramGroup struct {
	lastLE, lastCount float64
	buckets           int
	inf, sum, count   bool
	infValue          float64
}

// parseExposition is a deliberately strict parser of the text format,
// version 0.0.4, restricted to what this package promises to write. It
// accepts only `# HELP name text` immediately followed by `# TYPE name
// type`, and sample lines `name{labels} value` or `name value` that belong
// to the family of the last TYPE line. It also checks the semantics
// Prometheus relies on: families sorted and declared once, series sorted
// and unique, counters neither negative nor NaN, and every histogram
// series complete, with cumulative non-decreasing buckets in increasing le
// order ending in +Inf, which must equal _count.
func parseExposition(text string) (*exposition, error) {
	e := &exposition{values: map[string]float64{}, types: map[string]string{}}
	if text == "" {
		return e, nil
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("exposition does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")

	var (
		family, typ, pendingHelp string
		prevValues               []string // label values of the previous series, for the order check
		labelNames               []string // label names (le excluded) of the family's first series
		groups                   map[string]*histogramGroup
	)
	finishFamily := func() error {
		for key, g := range groups {
			if !g.inf || !g.sum || !g.count {
				return fmt.Errorf("histogram %s%s is incomplete: +Inf=%v _sum=%v _count=%v", family, key, g.inf, g.sum, g.count)
			}
		}
		groups = map[string]*histogramGroup{}
		return nil
	}

	for n, line := range lines {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", n+1, line, fmt.Sprintf(format, args...))
		}
		if pendingHelp != "" && !strings.HasPrefix(line, "# TYPE "+pendingHelp+" ") {
			return nil, fail("HELP for %s not followed by its TYPE", pendingHelp)
		}
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, help, ok := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			if !ok || !validMetricName(name) {
				return nil, fail("malformed HELP")
			}
			if err := checkEscapes(help, `\n`); err != nil {
				return nil, fail("HELP text: %v", err)
			}
			if _, ok := e.types[name]; ok {
				return nil, fail("family %s declared twice", name)
			}
			if err := finishFamily(); err != nil {
				return nil, err
			}
			if family != "" && name <= family {
				return nil, fail("family %s is not after %s: families must be sorted by name", name, family)
			}
			pendingHelp = name
		case strings.HasPrefix(line, "# TYPE "):
			if pendingHelp == "" {
				return nil, fail("TYPE without a preceding HELP")
			}
			name, t, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if t != "counter" && t != "gauge" && t != "histogram" {
				return nil, fail("unknown type %q", t)
			}
			family, typ, pendingHelp, prevValues, labelNames = name, t, "", nil, nil
			e.types[name] = t
		case strings.HasPrefix(line, "#"):
			return nil, fail("unexpected comment")
		default:
			name, labels, value, err := parseSample(line)
			if err != nil {
				return nil, fail("%v", err)
			}
			if family == "" {
				return nil, fail("sample before any TYPE line")
			}
			suffix, ok := strings.CutPrefix(name, family)
			if !ok || (typ != "histogram" && suffix != "") || (typ == "histogram" && suffix != "_bucket" && suffix != "_sum" && suffix != "_count") {
				return nil, fail("sample %s does not belong to family %s declared by the preceding TYPE", name, family)
			}
			series := line[:strings.LastIndexByte(line, ' ')]
			if _, dup := e.values[series]; dup {
				return nil, fail("duplicate series")
			}
			e.values[series] = value

			var le string
			var names, values []string // label names and values in order, le excluded
			for _, l := range labels {
				if typ == "histogram" && l[0] == "le" {
					le = l[1]
					continue
				}
				names, values = append(names, l[0]), append(values, l[1])
			}
			if labelNames == nil {
				labelNames = append([]string{}, names...)
			} else if !slices.Equal(names, labelNames) {
				return nil, fail("label names %q differ from the family's %q", names, labelNames)
			}
			newSeries := typ != "histogram" || (suffix == "_bucket" && groups[seriesKey(values)] == nil)
			if newSeries {
				if prevValues != nil && slices.Compare(values, prevValues) <= 0 {
					return nil, fail("series not sorted by label values after %q", prevValues)
				}
				prevValues = append([]string{}, values...)
			} else if !slices.Equal(values, prevValues) {
				return nil, fail("histogram lines of one series are not contiguous")
			}

			switch typ {
			case "counter":
				if !(value >= 0) {
					return nil, fail("counter value %v is negative or NaN", value)
				}
			case "histogram":
				if err := checkHistogramLine(groups, seriesKey(values), suffix, le, value); err != nil {
					return nil, fail("%v", err)
				}
			}
		}
	}
	if pendingHelp != "" {
		return nil, fmt.Errorf("HELP for %s at the end without a TYPE", pendingHelp)
	}
	if err := finishFamily(); err != nil {
		return nil, err
	}
	return e, nil
}

// checkHistogramLine checks one histogram line against the running state of
// its series: buckets before _sum before _count, le increasing and ending
// in +Inf, counts whole, cumulative and equal to _count.
func checkHistogramLine(groups map[string]*histogramGroup, key, suffix, le string, value float64) error {
	g := groups[key]
	if g == nil {
		g = &histogramGroup{}
		groups[key] = g
	}
	switch suffix {
	case "_bucket":
		if le == "" {
			return fmt.Errorf("bucket without le")
		}
		if g.inf {
			return fmt.Errorf("bucket after the +Inf bucket")
		}
		bound, err := parseValue(le)
		if err != nil {
			return fmt.Errorf("le: %v", err)
		}
		if g.buckets > 0 && !(bound > g.lastLE) {
			return fmt.Errorf("le %v not greater than previous %v", bound, g.lastLE)
		}
		if value < 0 || value != float64(uint64(value)) {
			return fmt.Errorf("bucket count %v is not a whole number", value)
		}
		if value < g.lastCount {
			return fmt.Errorf("bucket count %v below previous %v: buckets must be cumulative", value, g.lastCount)
		}
		g.lastLE, g.lastCount = bound, value
		g.buckets++
		if le == "+Inf" {
			g.inf, g.infValue = true, value
		}
	case "_sum":
		if le != "" || !g.inf || g.sum {
			return fmt.Errorf("_sum must follow the +Inf bucket once, without le")
		}
		g.sum = true
	case "_count":
		if le != "" || !g.sum || g.count {
			return fmt.Errorf("_count must follow _sum once, without le")
		}
		if value != g.infValue {
			return fmt.Errorf("_count %v differs from the +Inf bucket %v", value, g.infValue)
		}
		g.count = true
	}
	return nil
}

// parseSample splits `name{l1="v1",...} value` or `name value` into the
// name, the label pairs in order with their values unescaped, and the
// value. Timestamps, empty braces and trailing commas are rejected because
// this package never writes them.
func parseSample(line string) (name string, labels [][2]string, value float64, err error) {
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' {
		i++
	}
	name = line[:i]
	if !validMetricName(name) {
		return "", nil, 0, fmt.Errorf("invalid metric name %q", name)
	}
	rest := line[i:]
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		seen := map[string]bool{}
		for {
			eq := strings.IndexByte(rest, '=')
			if eq < 0 {
				return "", nil, 0, fmt.Errorf("label without =")
			}
			ln := rest[:eq]
			if !validLabelName(ln) {
				return "", nil, 0, fmt.Errorf("invalid label name %q", ln)
			}
			if seen[ln] {
				return "", nil, 0, fmt.Errorf("duplicate label %q", ln)
			}
			seen[ln] = true
			rest = rest[eq+1:]
			if !strings.HasPrefix(rest, `"`) {
				return "", nil, 0, fmt.Errorf("label %s: value not quoted", ln)
			}
			var v strings.Builder
			j := 1
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] != '\\' {
					v.WriteByte(rest[j])
					continue
				}
				j++
				switch {
				case j < len(rest) && rest[j] == '\\':
					v.WriteByte('\\')
				case j < len(rest) && rest[j] == '"':
					v.WriteByte('"')
				case j < len(rest) && rest[j] == 'n':
					v.WriteByte('\n')
				default:
					return "", nil, 0, fmt.Errorf("label %s: invalid escape", ln)
				}
			}
			if j >= len(rest) {
				return "", nil, 0, fmt.Errorf("label %s: unterminated value", ln)
			}
			if !utf8.ValidString(v.String()) {
				return "", nil, 0, fmt.Errorf("label %s: value is not UTF-8", ln)
			}
			labels = append(labels, [2]string{ln, v.String()})
			rest = rest[j+1:]
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			if !strings.HasPrefix(rest, ",") {
				return "", nil, 0, fmt.Errorf("expected , or } after label %s", ln)
			}
			rest = rest[1:]
		}
	}
	v, ok := strings.CutPrefix(rest, " ")
	if !ok {
		return "", nil, 0, fmt.Errorf("expected one space before the value")
	}
	value, err = parseValue(v)
	return name, labels, value, err
}

// parseValue parses a sample value or le bound: +Inf, -Inf, NaN, or a Go
// float literal in decimal or exponent form, nothing else (no "Inf", no
// hex, no underscores, no trailing timestamp).
func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf", "-Inf", "NaN":
		return strconv.ParseFloat(s, 64)
	}
	if s == "" || strings.Trim(s, "0123456789.eE+-") != "" {
		return 0, fmt.Errorf("invalid value %q", s)
	}
	return strconv.ParseFloat(s, 64)
}

// checkEscapes reports an error for a backslash that does not start one of
// the escapes allowed: `\\` and those listed in allowed.
func checkEscapes(s string, allowed ...string) error {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		esc := s[i:min(i+2, len(s))]
		if esc != `\\` && !slices.Contains(allowed, esc) {
			return fmt.Errorf("invalid escape %q", esc)
		}
		i++
	}
	return nil
}

// TestParseExpositionRejects makes sure the checker itself is strict: each
// input breaks exactly one rule and must be rejected with that reason.
func TestParseExpositionRejects(t *testing.T) {
	const head = "# HELP c_total h\n# TYPE c_total counter\n"
	const hist = "# HELP h h\n# TYPE h histogram\n"
	for _, tc := range []struct{ name, text, want string }{
		{"no final newline", head + "c_total 1", "newline"},
		{"sample without TYPE", "c_total 1\n", "before any TYPE"},
		{"TYPE without HELP", "# TYPE c_total counter\n", "without a preceding HELP"},
		{"HELP without TYPE", "# HELP c_total h\n", "without a TYPE"},
		{"unknown type", "# HELP c h\n# TYPE c summary\n", "unknown type"},
		{"sample of another family", head + "d_total 1\n", "does not belong"},
		{"family declared twice", head + head, "declared twice"},
		{"families unsorted", "# HELP z h\n# TYPE z gauge\n# HELP a h\n# TYPE a gauge\n", "sorted by name"},
		{"negative counter", head + "c_total -1\n", "negative"},
		{"NaN counter", head + "c_total NaN\n", "negative or NaN"},
		{"duplicate series", head + "c_total{a=\"x\"} 1\nc_total{a=\"x\"} 2\n", "duplicate series"},
		{"label names differ", head + "c_total{a=\"x\"} 1\nc_total{b=\"y\"} 2\n", "differ from"},
		{"series unsorted", head + "c_total{a=\"y\"} 1\nc_total{a=\"x\"} 2\n", "not sorted"},
		{"bad escape in label", head + `c_total{a="\t"} 1` + "\n", "invalid escape"},
		{"unterminated label", head + `c_total{a="x} 1` + "\n", "unterminated"},
		{"duplicate label", head + `c_total{a="x",a="y"} 1` + "\n", "duplicate label"},
		{"bad label name", head + `c_total{1a="x"} 1` + "\n", "invalid label name"},
		{"empty braces", head + "c_total{} 1\n", "label without ="},
		{"timestamp", head + "c_total 1 1700000000\n", "invalid value"},
		{"Inf without sign", head + "c_total Inf\n", "invalid value"},
		{"bad HELP escape", "# HELP c_total a\\tb\n# TYPE c_total counter\n", "invalid escape"},
		{"other comment", "# hello\n", "unexpected comment"},
		{"blank line", head + "\n", "invalid metric name"},
		{"bucket not cumulative", hist + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", "cumulative"},
		{"le not increasing", hist + "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", "not greater"},
		{"count differs from +Inf", hist + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", "differs"},
		{"no +Inf bucket", hist + "h_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "must follow the +Inf"},
		{"missing _count", hist + "h_bucket{le=\"+Inf\"} 1\nh_sum 1\n", "incomplete"},
		{"bucket without le", hist + "h_bucket 1\n", "without le"},
		{"fractional bucket", hist + "h_bucket{le=\"+Inf\"} 0.5\n", "whole number"},
		{"histogram plain sample", hist + "h 1\n", "does not belong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseExposition(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseExposition(%q) = %v, want an error containing %q", tc.text, err, tc.want)
			}
		})
	}
}

// TestParseExpositionAccepts checks a hand-written valid exposition parses
// and that values are unescaped and keyed as written.
func TestParseExpositionAccepts(t *testing.T) {
	text := "# HELP a_total x \\\\ y\\n z\n# TYPE a_total counter\n" +
		"a_total{k=\"q\\\"\\\\\\n\"} 1.5e+06\n" +
		"# HELP b h\n# TYPE b histogram\n" +
		"b_bucket{x=\"1\",le=\"0.5\"} 0\nb_bucket{x=\"1\",le=\"+Inf\"} 2\nb_sum{x=\"1\"} NaN\nb_count{x=\"1\"} 2\n" +
		"b_bucket{x=\"2\",le=\"0.5\"} 1\nb_bucket{x=\"2\",le=\"+Inf\"} 1\nb_sum{x=\"2\"} -Inf\nb_count{x=\"2\"} 1\n"
	e, err := parseExposition(text)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.values[`a_total{k="q\"\\\n"}`]; got != 1.5e6 {
		t.Errorf("a_total = %v, want 1.5e6", got)
	}
	if e.types["b"] != "histogram" {
		t.Errorf("type of b = %q", e.types["b"])
	}
}

// mustParse scrapes r, fails the test unless the exposition passes the
// strict checker, and returns the text and parsed values.
func mustParse(t *testing.T, r *Registry) (string, *exposition) {
	t.Helper()
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	e, err := parseExposition(b.String())
	if err != nil {
		t.Fatalf("invalid exposition: %v\n%s", err, b.String())
	}
	return b.String(), e
}

// value returns the sample for series, failing the test when it is absent.
func (e *exposition) value(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := e.values[series]
	if !ok {
		t.Fatalf("series %s not found", series)
	}
	return v
}
