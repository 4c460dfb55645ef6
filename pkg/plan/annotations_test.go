package plan

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParseNameList(t *testing.T) {
	tests := []struct {
		name      string
		value     string
		want      []string
		wantError string
	}{
		{name: "one", value: "app-config", want: []string{"app-config"}},
		{name: "several keep order", value: "b,a.c,d-e", want: []string{"b", "a.c", "d-e"}},
		{name: "empty value", value: "", wantError: "item 1 is empty"},
		{name: "empty item", value: "a,,b", want: []string{"a", "b"}, wantError: "item 2 is empty"},
		{name: "trailing comma", value: "a,", want: []string{"a"}, wantError: "item 2 is empty"},
		{name: "space after comma", value: "a, b", want: []string{"a"}, wantError: `item 2 " b" contains whitespace`},
		{name: "inner whitespace", value: "a\tb", wantError: "contains whitespace"},
		{name: "duplicate", value: "a,b,a", want: []string{"a", "b"}, wantError: `item 3 "a" is a duplicate`},
		{name: "upper case", value: "App", wantError: `item 1 "App" is not a valid name`},
		{name: "too long", value: strings.Repeat("a", 254), wantError: "is not a valid name"},
		{name: "underscore", value: "a_b", wantError: "is not a valid name"},
		{name: "several problems", value: "A,,b", want: []string{"b"}, wantError: "; item 2 is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNameList(tt.value)
			if !slices.Equal(got, tt.want) {
				t.Errorf("names = %q, want %q", got, tt.want)
			}
			switch {
			case tt.wantError == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantError != "" && (err == nil || !strings.Contains(err.Error(), tt.wantError)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantError)
			}
		})
	}
}

func TestParseOptIn(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		autoAll     bool
		want        OptIn
		wantEnabled bool
		wantError   string
	}{
		{name: "nothing", annotations: nil},
		{name: "auto", annotations: map[string]string{AnnotationAuto: "true"}, want: OptIn{Auto: true}, wantEnabled: true},
		{name: "auto false", annotations: map[string]string{AnnotationAuto: "false"}},
		{name: "auto-all", autoAll: true, want: OptIn{Auto: true}, wantEnabled: true},
		{name: "auto-all opted out", autoAll: true, annotations: map[string]string{AnnotationAuto: "false"}},
		{name: "by name only", annotations: map[string]string{AnnotationConfigMaps: "a,b", AnnotationSecrets: "s"},
			want: OptIn{ConfigMaps: []string{"a", "b"}, Secrets: []string{"s"}}, wantEnabled: true},
		{name: "by name with auto false", annotations: map[string]string{AnnotationAuto: "false", AnnotationSecrets: "s"},
			want: OptIn{Secrets: []string{"s"}}, wantEnabled: true},
		{name: "bad auto", annotations: map[string]string{AnnotationAuto: "yes"}, wantError: `reroll.dev/auto must be "true" or "false", not "yes"`},
		{name: "bad auto keeps auto-all", autoAll: true, annotations: map[string]string{AnnotationAuto: "True"}, want: OptIn{Auto: true}, wantEnabled: true, wantError: "not \"True\""},
		{name: "bad list keeps valid names", annotations: map[string]string{AnnotationConfigMaps: "a,,b"},
			want: OptIn{ConfigMaps: []string{"a", "b"}}, wantEnabled: true, wantError: "reroll.dev/configmaps: item 2 is empty"},
		{name: "both lists bad", annotations: map[string]string{AnnotationConfigMaps: "A", AnnotationSecrets: " s"},
			wantError: "reroll.dev/secrets: item 1 \" s\" contains whitespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := ParseOptIn(tt.annotations, OptInSettings{AutoAll: tt.autoAll})
			if got.Auto != tt.want.Auto || !slices.Equal(got.ConfigMaps, tt.want.ConfigMaps) || !slices.Equal(got.Secrets, tt.want.Secrets) {
				t.Errorf("optIn = %+v, want %+v", got, tt.want)
			}
			if got.Enabled() != tt.wantEnabled {
				t.Errorf("enabled = %v, want %v", got.Enabled(), tt.wantEnabled)
			}
			switch {
			case tt.wantError == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantError != "" && (err == nil || !strings.Contains(err.Error(), tt.wantError)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantError)
			}
		})
	}
}

func TestIsIgnored(t *testing.T) {
	tests := []struct {
		value         *string
		reloader      *string
		readReloader  bool
		wantIgnored   bool
		wantMalformed bool
	}{
		{value: nil},
		{value: ptrTo("true"), wantIgnored: true},
		{value: ptrTo("false")},
		{value: ptrTo("yes"), wantMalformed: true},
		{value: ptrTo(""), wantMalformed: true},
		{reloader: ptrTo("true"), readReloader: true, wantIgnored: true},
		{reloader: ptrTo("true")},                                            // without --reloader-annotations
		{value: ptrTo("false"), reloader: ptrTo("true"), readReloader: true}, // reroll's wins
	}
	for _, tt := range tests {
		a := map[string]string{}
		if tt.value != nil {
			a[AnnotationIgnore] = *tt.value
		}
		if tt.reloader != nil {
			a[ReloaderIgnore] = *tt.reloader
		}
		ignored, malformed := IsIgnored(a, tt.readReloader)
		if ignored != tt.wantIgnored || malformed != tt.wantMalformed {
			t.Errorf("isIgnored(%v, %v) = %v, %v; want %v, %v", a, tt.readReloader, ignored, malformed, tt.wantIgnored, tt.wantMalformed)
		}
	}
}

// ptrTo returns a pointer to v.
func ptrTo[T any](v T) *T { return &v }

// FuzzParseNameList checks that parsing never panics, that every name it
// returns is valid and unique, and that a clean result round-trips.
func FuzzParseNameList(f *testing.F) {
	for _, seed := range []string{"", "a", "a,b", "a,,b", " a", "a,a", "A", "a.b-c,d", strings.Repeat("x,", 300), "\x00,é"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		names, err := ParseNameList(value)
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Fatalf("duplicate %q in %q", n, names)
			}
			seen[n] = true
			if again, err := ParseNameList(n); err != nil || len(again) != 1 {
				t.Fatalf("returned name %q does not parse alone: %v", n, err)
			}
		}
		if err == nil && strings.Join(names, ",") != value {
			t.Fatalf("clean parse of %q gave %q", value, names)
		}
	})
}

// Reloader's reload lists: names are names, anything else a whole-name
// regular expression, and an item that is neither an error.
func TestParseReloaderReloadList(t *testing.T) {
	tests := []struct {
		in       string
		names    []string
		patterns []string
		err      string
	}{
		{in: "a, b", names: []string{"a", "b"}},
		{in: "app-config-.*", patterns: []string{"^(?:app-config-.*)$"}},
		{in: "cfg, app-.*", names: []string{"cfg"}, patterns: []string{"^(?:app-.*)$"}},
		{in: "app-(", err: `item 1 "app-(" is neither an object name nor a regular expression`},
		{in: "a,,b", names: []string{"a", "b"}, err: "item 2 is empty"},
	}
	for _, tt := range tests {
		names, patterns, err := parseReloaderReloadList(tt.in)
		var got []string
		for _, p := range patterns {
			got = append(got, p.String())
		}
		if !slices.Equal(names, tt.names) || !slices.Equal(got, tt.patterns) || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: names %q, patterns %q, err %v; want %q, %q, %q", tt.in, names, got, err, tt.names, tt.patterns, tt.err)
		}
	}
	o := OptIn{ConfigMapPatterns: []*regexp.Regexp{regexp.MustCompile("^(?:app-.*)$")}}
	if !o.Matches(ConfigRef{TypeConfigMap, "app-1"}) || o.Matches(ConfigRef{TypeConfigMap, "my-app-1"}) || o.Matches(ConfigRef{TypeSecret, "app-1"}) {
		t.Error("a pattern matches a name it should not, or not one it should")
	}
}
