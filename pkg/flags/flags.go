// Package flags declares command-line flags once each: a table entry says a
// flag's name, default, usage and section, binds it to the variable it sets,
// and declares its checks (a range, a parser), so that nothing about a flag
// is written twice. The same table registers the flags on a flag.FlagSet,
// validates them, loads values from elsewhere (the settings a controller
// published), and writes the flags' reference (Markdown).
//
// Parsing is in two steps, as the controllers' command lines always were: a
// value that is not even of the flag's type (a duration that does not parse)
// stops flag.FlagSet.Parse with the flag package's own message; every other
// problem is found by Validate, which reports them all at once.
package flags

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Flag is one declared flag.
type Flag struct {
	// Name is the flag's name, without dashes.
	Name string
	// Usage says what the flag does, as -help and the reference print it.
	Usage string
	// Default is the default value, as text.
	Default string
	// Group is a tag a table may sort flags by (see InGroup).
	Group string
	// kind names the value's type in the reference ("duration").
	kind string
	// syntax checks that a value is of the flag's type, at flag-parse time;
	// nil accepts any text.
	syntax func(string) error
	// bind parses a value and stores it in the bound variable, or returns
	// the problem with it.
	bind func(string) error
	// isBool lets "--name" stand for "--name=true".
	isBool bool
	// value is the text given, or Default; given is whether it was given.
	value string
	given bool
}

// Check is a declared check of a value of type T: the empty string when v
// passes, else what v must be, such as "must be at least 1".
type Check[T any] func(v T) string

// AtLeast checks that a value is at least low.
func AtLeast[T cmp.Ordered](low T) Check[T] {
	return func(v T) string {
		if v < low {
			return fmt.Sprintf("must be at least %v", low)
		}
		return ""
	}
}

// Positive checks that a value is above zero.
func Positive[T cmp.Ordered]() Check[T] {
	return func(v T) string {
		var zero T
		if v <= zero {
			return "must be positive"
		}
		return ""
	}
}

// NotNegative checks that a value is zero or above.
func NotNegative[T cmp.Ordered]() Check[T] {
	return func(v T) string {
		var zero T
		if v < zero {
			return "must not be negative"
		}
		return ""
	}
}

// NotEmpty checks that a text is not empty.
func NotEmpty() Check[string] {
	return func(v string) string {
		if v == "" {
			return "must not be empty"
		}
		return ""
	}
}

// typed returns a Flag bound to p: parse reads a value of T (it is also the
// syntax check, unless lenient), and checks judge it.
func typed[T any](p *T, name string, def T, usage, kind string, parse func(string) (T, error), format func(T) string, checks []Check[T]) *Flag {
	f := &Flag{Name: name, Usage: usage, Default: format(def), kind: kind}
	f.syntax = func(s string) error { _, err := parse(s); return err }
	f.bind = func(s string) error {
		v, err := parse(s)
		if err != nil {
			return fmt.Errorf("--%s: invalid value %q: %w", name, s, err)
		}
		for _, c := range checks {
			if why := c(v); why != "" {
				return checkError(name, kind, why, s)
			}
		}
		*p = v
		return nil
	}
	f.value = f.Default
	return f
}

// checkError is the error of a value s of flag name, of kind, that is not
// what it must be (why): "--workers must be at least 1, not 0".
func checkError(name, kind, why, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("--%s %s", name, why)
	case kind == "string":
		return fmt.Errorf("--%s %s, not %q", name, why, s)
	}
	return fmt.Errorf("--%s %s, not %s", name, why, s)
}

// Bool declares a boolean flag bound to p.
func Bool(p *bool, name string, def bool, usage string) *Flag {
	f := typed(p, name, def, usage, "bool", strconv.ParseBool, strconv.FormatBool, nil)
	f.isBool = true
	return f
}

// Int declares an integer flag bound to p.
func Int(p *int, name string, def int, usage string, checks ...Check[int]) *Flag {
	return typed(p, name, def, usage, "int", strconv.Atoi, strconv.Itoa, checks)
}

// Float declares a floating-point flag bound to p.
func Float(p *float64, name string, def float64, usage string, checks ...Check[float64]) *Flag {
	parse := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	format := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return typed(p, name, def, usage, "float", parse, format, checks)
}

// Duration declares a duration flag bound to p.
func Duration(p *time.Duration, name string, def time.Duration, usage string, checks ...Check[time.Duration]) *Flag {
	return typed(p, name, def, usage, "duration", time.ParseDuration, formatDuration, checks)
}

// formatDuration prints a duration as it is usually written: "10m", not
// "10m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// String declares a text flag bound to p.
func String(p *string, name, def, usage string, checks ...Check[string]) *Flag {
	f := typed(p, name, def, usage, "string", func(s string) (string, error) { return s, nil }, func(s string) string { return s }, checks)
	f.syntax = nil
	return f
}

// Parsed declares a text flag whose value parse turns into p's type (a list,
// a selector, a schedule). Its errors name the flag, unless they already
// start with it.
func Parsed[T any](p *T, name, def, usage string, parse func(string) (T, error)) *Flag {
	f := &Flag{Name: name, Usage: usage, Default: def, kind: "string", value: def}
	f.bind = func(s string) error {
		v, err := parse(s)
		if err != nil {
			if strings.HasPrefix(err.Error(), "--"+name) {
				return err
			}
			return fmt.Errorf("--%s: %w", name, err)
		}
		*p = v
		return nil
	}
	return f
}

// In sets the flag's Group and returns it.
func (f *Flag) In(group string) *Flag {
	f.Group = group
	return f
}

// InGroup returns the flags of fs in group.
func InGroup(fs []*Flag, group string) []*Flag {
	var out []*Flag
	for _, f := range fs {
		if f.Group == group {
			out = append(out, f)
		}
	}
	return out
}

// Set sets the flag's value as if it were given, after checking its
// syntax.
func (f *Flag) Set(s string) error { return f.set(s) }

// Kind names the type of the flag's value ("duration", "string").
func (f *Flag) Kind() string { return f.kind }

// Given reports whether the flag was set, on the command line or by Load.
func (f *Flag) Given() bool { return f.given }

// Value returns the flag's value as text: the one given, else the default.
func (f *Flag) Value() string { return f.value }

// set records a value, after checking its syntax.
func (f *Flag) set(s string) error {
	if f.syntax != nil {
		if err := f.syntax(s); err != nil {
			return errors.New("parse error")
		}
	}
	f.value, f.given = s, true
	return nil
}

// flagValue is a Flag as flag.FlagSet sees it.
type flagValue struct{ f *Flag }

// String implements flag.Value.
func (v flagValue) String() string {
	if v.f == nil {
		return ""
	}
	return v.f.value
}

// Set implements flag.Value.
func (v flagValue) Set(s string) error { return v.f.set(s) }

// IsBoolFlag lets a boolean flag be given without a value.
func (v flagValue) IsBoolFlag() bool { return v.f.isBool }
