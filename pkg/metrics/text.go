package metrics

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// appendEscapedHelp appends HELP text with backslash and newline escaped,
// the only two escapes the format defines for HELP; a raw newline would
// end the comment line early.
func appendEscapedHelp(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendEscapedLabelValue appends a label value with backslash, double
// quote and newline escaped, so that it cannot end the quoted value or the
// line early.
func appendEscapedLabelValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends v the way Prometheus' own client writes sample values
// and bucket bounds: +Inf, -Inf and NaN spelled out, everything else as the
// shortest decimal that parses back to the same float64 (0.005, 1, 2.5,
// 1e-08).
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// formatFloat is appendFloat for a string, used to precompute "le" values.
func formatFloat(v float64) string { return string(appendFloat(nil, v)) }

// appendLabelPairs appends `n1="v1",n2="v2"` without braces, so a histogram
// can render a series' labels once and reuse them for every bucket line.
func appendLabelPairs(b []byte, names, values []string) []byte {
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, n...)
		b = append(b, `="`...)
		b = appendEscapedLabelValue(b, values[i])
		b = append(b, '"')
	}
	return b
}

// appendSample appends one sample line, `name+suffix{pairs,le="le"} value`.
// pairs comes from appendLabelPairs; le is empty except on histogram bucket
// lines. Braces are left out when there are no labels at all.
func appendSample(b []byte, name, suffix string, pairs []byte, le string, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(pairs) > 0 || le != "" {
		b = append(b, '{')
		b = append(b, pairs...)
		if le != "" {
			if len(pairs) > 0 {
				b = append(b, ',')
			}
			b = append(b, `le="`...)
			b = append(b, le...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, v)
	return append(b, '\n')
}

// validUTF8 returns values with every invalid UTF-8 sequence replaced by
// U+FFFD. It copies only when something must change, and never writes to
// the caller's slice.
func validUTF8(values []string) []string {
	out := values
	copied := false
	for i, v := range values {
		if utf8.ValidString(v) {
			continue
		}
		if !copied {
			out, copied = slices.Clone(values), true
		}
		out[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	return out
}

// seriesKey joins label values into a map key. 0xff never occurs in valid
// UTF-8, which validUTF8 guarantees, so distinct value lists get distinct
// keys.
func seriesKey(values []string) string { return strings.Join(values, "\xff") }

// compareLabelValues orders series by their label values, position by
// position, which is the order WriteText promises.
func compareLabelValues(a, b []string) int { return slices.Compare(a, b) }
