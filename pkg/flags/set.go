package flags

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
)

// Set is a table of flags, in sections, in the order they are declared.
type Set struct {
	sections []section
}

// section is a titled group of flags.
type section struct {
	title string
	flags []*Flag
}

// Section adds flags under a title (a heading of the reference); flags of
// one title declared in several calls stay together.
func (s *Set) Section(title string, flags ...*Flag) {
	for i := range s.sections {
		if s.sections[i].title == title {
			s.sections[i].flags = append(s.sections[i].flags, flags...)
			return
		}
	}
	s.sections = append(s.sections, section{title: title, flags: flags})
}

// All returns every flag, in table order.
func (s *Set) All() []*Flag {
	var out []*Flag
	for _, sec := range s.sections {
		out = append(out, sec.flags...)
	}
	return out
}

// Lookup returns the flag named name, or nil.
func (s *Set) Lookup(name string) *Flag {
	for _, f := range s.All() {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Register defines every flag of s on fs.
func (s *Set) Register(fs *flag.FlagSet) {
	for _, f := range s.All() {
		fs.Var(flagValue{f}, f.Name, f.Usage)
	}
}

// Load sets flags from values, by name, as if they were given; a name s
// does not have is returned in unknown, and a value of the wrong type is
// an error.
func (s *Set) Load(values map[string]string) (unknown []string, err error) {
	var errs []error
	for _, name := range sortedKeys(values) {
		f := s.Lookup(name)
		if f == nil {
			unknown = append(unknown, name)
			continue
		}
		if err := f.set(values[name]); err != nil {
			errs = append(errs, fmt.Errorf("invalid value %q for --%s", values[name], name))
		}
	}
	return unknown, errors.Join(errs...)
}

// Validate parses every flag's value (the given one, else the default),
// checks it and stores it in its variable. It returns every problem, in
// table order.
func (s *Set) Validate() error {
	var errs []error
	for _, f := range s.All() {
		if err := f.bind(f.value); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Values returns the value of each flag of s, by name: the given one, else
// the default.
func (s *Set) Values() map[string]string {
	out := map[string]string{}
	for _, f := range s.All() {
		out[f.Name] = f.value
	}
	return out
}

// Given returns the names of the flags given, in table order.
func (s *Set) Given() []string {
	var out []string
	for _, f := range s.All() {
		if f.given {
			out = append(out, f.Name)
		}
	}
	return out
}

// Markdown writes the table as a Markdown reference: one section per
// title, one row per flag with its type (and group, if any), default and
// usage.
func (s *Set) Markdown() string {
	var b strings.Builder
	for i, sec := range s.sections {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "## %s\n\n| Flag | Default | Description |\n| --- | --- | --- |\n", sec.title)
		for _, f := range sec.flags {
			def := "`" + f.Default + "`"
			if f.Default == "" {
				def = "empty"
			}
			usage := strings.ReplaceAll(f.Usage, "|", `\|`)
			kind := f.kind
			if f.Group != "" {
				kind += ", " + f.Group
			}
			fmt.Fprintf(&b, "| `--%s` (%s) | %s | %s |\n", f.Name, kind, def, usage)
		}
	}
	return b.String()
}

// sortedKeys returns the keys of m, sorted, so that errors come in a
// stable order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
