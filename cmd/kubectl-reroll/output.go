package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// newTable returns a writer that aligns tab-separated columns as kubectl's
// tables are aligned: three spaces between columns, no colour.
func newTable(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)
}

// printStructured prints v as JSON or YAML (o.output).
func printStructured(out io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "json" {
		_, err = fmt.Fprintln(out, string(b))
		return err
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		return err
	}
	var y strings.Builder
	writeYAML(&y, tree, 0, false)
	_, err = io.WriteString(out, y.String())
	return err
}

// writeYAML writes a JSON-decoded value as block YAML, maps sorted by key.
// inList says the value starts after a "- ".
func writeYAML(b *strings.Builder, v any, indent int, inList bool) {
	pad := strings.Repeat("  ", indent)
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			b.WriteString("{}\n")
			return
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for n, k := range keys {
			if n > 0 || !inList {
				b.WriteString(pad)
			}
			b.WriteString(yamlString(k) + ":")
			writeYAMLValue(b, x[k], indent+1)
		}
	case []any:
		if len(x) == 0 {
			b.WriteString("[]\n")
			return
		}
		for n, item := range x {
			if n > 0 || !inList {
				b.WriteString(pad)
			}
			b.WriteString("- ")
			if _, nested := item.(map[string]any); nested {
				writeYAML(b, item, indent+1, true)
			} else {
				writeYAMLValue(b, item, indent+1)
			}
		}
	default:
		b.WriteString(yamlScalar(v) + "\n")
	}
}

// writeYAMLValue writes the value of a map key or list item: scalars on the
// same line, collections on the next lines.
func writeYAMLValue(b *strings.Builder, v any, indent int) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			b.WriteString(" {}\n")
			return
		}
		b.WriteString("\n")
		writeYAML(b, x, indent, false)
	case []any:
		if len(x) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteString("\n")
		writeYAML(b, x, indent, false)
	default:
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "- ") {
			b.WriteString(" ")
		}
		b.WriteString(yamlScalar(v) + "\n")
	}
}

// yamlScalar formats a JSON scalar as YAML.
func yamlScalar(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return yamlString(x)
	}
	return fmt.Sprint(v)
}

// yamlString quotes a string when plain YAML would read it as something
// else.
func yamlString(s string) string {
	if s == "" || strings.ContainsAny(s, ":#{}[],&*!|>'\"%@`\n") || strings.TrimSpace(s) != s ||
		slices.Contains([]string{"true", "false", "null", "yes", "no", "on", "off", "~"}, strings.ToLower(s)) {
		return strconv.Quote(s)
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.Quote(s)
	}
	return s
}

// shorten cuts s to n runes, marking the cut with "...".
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}

// keysText says which keys: "every key", or the keys joined.
func keysText(keys []string) string {
	if len(keys) == 0 {
		return "every key"
	}
	return strings.Join(keys, ",")
}

// orDash returns s, or "-" for an empty cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age formats how long ago t was at now, as kubectl's AGE column does
// (e.g. "5m").
func age(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
