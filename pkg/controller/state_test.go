package controller

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// testKey returns a hash key made of one repeated byte.
func testKey(t testing.TB, b byte) HashKey {
	t.Helper()
	k, err := NewHashKey(bytes.Repeat([]byte{b}, MinHashKeyBytes))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewHashKey(t *testing.T) {
	if _, err := NewHashKey(make([]byte, MinHashKeyBytes-1)); err == nil {
		t.Error("a short key was accepted")
	}
	a, b := testKey(t, 1), testKey(t, 2)
	if a.ID() == "" || a.ID() == b.ID() {
		t.Errorf("key ids %q and %q must be set and differ", a.ID(), b.ID())
	}
	if a.ID() != testKey(t, 1).ID() {
		t.Error("key id is not deterministic")
	}
}

func TestCalculateFingerprint(t *testing.T) {
	key := testKey(t, 1)
	cm := configRef{typeConfigMap, "cm"}
	oneKey := consumption{ref: cm, required: true, keys: keysOf(true, "a")}
	optionalKey := consumption{ref: cm, keys: keysOf(false, "a")}
	all := consumption{ref: cm, required: true, allKeys: true}
	base := map[string]string{"a": digestValue("1"), "b": digestValue("2")}
	with := func(k, v string) map[string]string {
		m := maps.Clone(base)
		if v == "" {
			delete(m, k)
		} else {
			m[k] = digestValue(v)
		}
		return m
	}
	fp := func(u consumption, d map[string]string) string {
		s, _ := calculateFingerprint(key, u, d)
		return s
	}
	tests := []struct {
		name      string
		a, b      string
		wantEqual bool
	}{
		{"consumed key changes", fp(oneKey, base), fp(oneKey, with("a", "9")), false},
		{"unconsumed key changes", fp(oneKey, base), fp(oneKey, with("b", "9")), true},
		{"unconsumed key added", fp(oneKey, base), fp(oneKey, with("c", "9")), true},
		{"every key: any key changes", fp(all, base), fp(all, with("b", "9")), false},
		{"every key: key added", fp(all, base), fp(all, with("c", "9")), false},
		{"every key: key removed", fp(all, base), fp(all, with("b", "")), false},
		{"optional key removed", fp(optionalKey, base), fp(optionalKey, with("a", "")), false},
		{"value moved to another key", fp(all, map[string]string{"a": digestValue("1")}), fp(all, map[string]string{"b": digestValue("1")}), false},
		{"same content", fp(all, base), fp(all, maps.Clone(base)), true},
		{"other object, same content", fp(all, base), fp(consumption{ref: configRef{typeSecret, "cm"}, allKeys: true}, base), false},
	}
	for _, tt := range tests {
		if (tt.a == tt.b) != tt.wantEqual {
			t.Errorf("%s: equal = %v, want %v", tt.name, tt.a == tt.b, tt.wantEqual)
		}
	}
	if fp(all, base) == func() string { s, _ := calculateFingerprint(testKey(t, 2), all, base); return s }() {
		t.Error("fingerprint does not depend on the hash key")
	}
	if len(fp(all, base)) != 2*fingerprintBytes {
		t.Errorf("fingerprint %q has the wrong length", fp(all, base))
	}

	missingTests := []struct {
		name    string
		u       consumption
		digests map[string]string
		want    []string
	}{
		{"present", oneKey, base, nil},
		{"required key missing", oneKey, with("a", ""), []string{"a"}},
		{"optional key missing", optionalKey, with("a", ""), nil},
		{"named required key missing alongside every key", consumption{ref: cm, allKeys: true, keys: keysOf(true, "z", "a")}, base, []string{"z"}},
	}
	for _, tt := range missingTests {
		if _, got := calculateFingerprint(key, tt.u, tt.digests); !slices.Equal(got, tt.want) {
			t.Errorf("%s: missing = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestEntryID(t *testing.T) {
	cm := configRef{typeConfigMap, "cm"}
	all := entryID(consumption{ref: cm, allKeys: true, keys: keysOf(true, "a")})
	if all != "ConfigMap/cm" {
		t.Errorf("every-key entry = %q", all)
	}
	ab := entryID(consumption{ref: cm, keys: keysOf(true, "a", "b")})
	ba := entryID(consumption{ref: cm, keys: map[string]bool{"b": false, "a": true}})
	a := entryID(consumption{ref: cm, keys: keysOf(true, "a")})
	if !strings.HasPrefix(ab, "ConfigMap/cm@") || ab != ba || ab == a {
		t.Errorf("named-key entries: ab=%q ba=%q a=%q; want ab == ba != a, prefixed", ab, ba, a)
	}
}

func TestConsumedStateRoundTrip(t *testing.T) {
	s := consumedState{keyID: "k1", entries: map[string]string{"Secret/b": "ff", "ConfigMap/a@0011": "00", "ConfigMap/a": "absent"}}
	want := "v1;key=k1;ConfigMap/a=absent;ConfigMap/a@0011=00;Secret/b=ff"
	if got := s.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	back, err := parseConsumedState(want)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("parse = %+v, %v; want %+v", back, err, s)
	}
	empty := consumedState{keyID: "k", entries: map[string]string{}}
	if back, err := parseConsumedState(empty.String()); err != nil || !reflect.DeepEqual(back, empty) {
		t.Fatalf("empty state: %+v, %v", back, err)
	}
}

func TestParseConsumedStateErrors(t *testing.T) {
	for _, v := range []string{"", "v1", "v2;key=k", "v1;key=", "v1;kee=k", "v1;key=k;a", "v1;key=k;=x", "v1;key=k;a=", "v1;key=k;a=1;a=2"} {
		if _, err := parseConsumedState(v); err == nil {
			t.Errorf("parseConsumedState(%q) accepted malformed input", v)
		}
	}
}

// FuzzParseConsumedState checks that parsing never panics and that every
// state it accepts formats back to something that parses to the same state.
func FuzzParseConsumedState(f *testing.F) {
	for _, s := range []string{"v1;key=k", "v1;key=k;ConfigMap/a=00", "v1;key=k;a=1;a=2", ";;;", "v1;key=k;a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := parseConsumedState(v)
		if err != nil {
			return
		}
		again, err := parseConsumedState(s.String())
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("%q parsed to %+v, which formats to %q, which parses to %+v, %v", v, s, s.String(), again, err)
		}
	})
}

func TestCalculateState(t *testing.T) {
	key := testKey(t, 1)
	cmRef, secretRef := configRef{typeConfigMap, "cm"}, configRef{typeSecret, "s"}
	required := consumption{ref: cmRef, required: true, allKeys: true, from: site("container app envFrom")}
	optional := consumption{ref: secretRef, allKeys: true, from: site("volume s")}
	v1 := map[string]string{"a": digestValue("1")}
	v2 := map[string]string{"a": digestValue("2")}
	fp := func(u consumption, d map[string]string) string { s, _ := calculateFingerprint(key, u, d); return s }
	lookup := func(objs map[configRef]cachedConfig) configLookup {
		return func(r configRef) (cachedConfig, bool) { c, ok := objs[r]; return c, ok }
	}
	tests := []struct {
		name         string
		consumed     []consumption
		objs         map[configRef]cachedConfig
		previous     *consumedState
		want         map[string]string
		wantProblems []problem
	}{
		{
			name:     "present objects are fingerprinted",
			consumed: []consumption{required, optional},
			objs:     map[configRef]cachedConfig{cmRef: {digests: v1}, secretRef: {digests: v2}},
			want:     map[string]string{"ConfigMap/cm": fp(required, v1), "Secret/s": fp(optional, v2)},
		},
		{
			name:     "missing optional object without history is absent",
			consumed: []consumption{optional},
			want:     map[string]string{"Secret/s": fingerprintAbsent},
		},
		{
			name:     "deleted optional object keeps its fingerprint",
			consumed: []consumption{optional},
			previous: &consumedState{entries: map[string]string{"Secret/s": "old"}},
			want:     map[string]string{"Secret/s": "old"},
		},
		{
			name:     "missing required object blocks",
			consumed: []consumption{required, optional},
			objs:     map[configRef]cachedConfig{secretRef: {digests: v2}},
			want:     map[string]string{"Secret/s": fp(optional, v2)},
			wantProblems: []problem{{ReasonMissingReference,
				"ConfigMap/cm (referenced by container app envFrom) does not exist; not rolling until it does", true}},
		},
		{
			name:     "missing required key blocks",
			consumed: []consumption{{ref: cmRef, required: true, keys: keysOf(true, "b"), from: site("container app env B")}},
			objs:     map[configRef]cachedConfig{cmRef: {digests: v1}},
			want:     map[string]string{},
			wantProblems: []problem{{ReasonMissingKey,
				"ConfigMap/cm has no key b (referenced by container app env B); not rolling until it does", true}},
		},
		{
			name:     "ignored object keeps its recorded fingerprint",
			consumed: []consumption{required},
			objs:     map[configRef]cachedConfig{cmRef: {digests: v2, ignored: true}},
			previous: &consumedState{entries: map[string]string{"ConfigMap/cm": "old"}},
			want:     map[string]string{"ConfigMap/cm": "old"},
		},
		{
			name:     "ignored object without history is fingerprinted once",
			consumed: []consumption{required},
			objs:     map[configRef]cachedConfig{cmRef: {digests: v2, ignored: true}},
			want:     map[string]string{"ConfigMap/cm": fp(required, v2)},
		},
		{
			name:     "malformed ignore warns and does not ignore",
			consumed: []consumption{required},
			objs:     map[configRef]cachedConfig{cmRef: {digests: v2, malformedIgnore: "yes"}},
			previous: &consumedState{entries: map[string]string{"ConfigMap/cm": "old"}},
			want:     map[string]string{"ConfigMap/cm": fp(required, v2)},
			wantProblems: []problem{{ReasonInvalidAnnotation,
				`ConfigMap/cm has reroll.dev/ignore="yes"; only "true" ignores it, so it is not ignored`, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := calculateState(key, tt.consumed, lookup(tt.objs), tt.previous)
			if got.keyID != key.ID() || !maps.Equal(got.entries, tt.want) {
				t.Errorf("state = %+v, want entries %+v", got, tt.want)
			}
			if !reflect.DeepEqual(problems, tt.wantProblems) {
				t.Errorf("problems = %+v\nwant       %+v", problems, tt.wantProblems)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	state := func(keyID string, kv ...string) consumedState {
		s := consumedState{keyID: keyID, entries: map[string]string{}}
		for i := 0; i < len(kv); i += 2 {
			s.entries[kv[i]] = kv[i+1]
		}
		return s
	}
	tests := []struct {
		name        string
		recorded    bool
		stored      consumedState
		storedErr   error
		desired     consumedState
		rollOnAdopt bool
		want        decision
	}{
		{name: "first sight adopts", desired: state("k", "a", "1"), want: decision{action: actionAdopt}},
		{name: "first sight rolls with --roll-on-adopt", desired: state("k", "a", "1"), rollOnAdopt: true, want: decision{action: actionRoll}},
		{name: "unchanged", recorded: true, stored: state("k", "a", "1"), desired: state("k", "a", "1"), want: decision{action: actionNone}},
		{name: "content changed", recorded: true, stored: state("k", "a", "1", "b", "2", "c", "3"), desired: state("k", "a", "9", "b", "2", "c", "8"),
			want: decision{action: actionRoll, changed: []string{"a", "c"}}},
		{name: "reference added", recorded: true, stored: state("k", "a", "1"), desired: state("k", "a", "1", "b", "2"), want: decision{action: actionRecord}},
		{name: "reference removed", recorded: true, stored: state("k", "a", "1", "b", "2"), desired: state("k", "a", "1"), want: decision{action: actionRecord}},
		{name: "reference added while another changed", recorded: true, stored: state("k", "a", "1"), desired: state("k", "a", "2", "b", "2"),
			want: decision{action: actionRoll, changed: []string{"a"}}},
		{name: "other key re-baselines", recorded: true, stored: state("old", "a", "1"), desired: state("k", "a", "2"),
			want: decision{action: actionRebaseline, why: "its reroll.dev/consumed annotation was made under hash key old, and the current key is k"}},
		{name: "unreadable re-baselines", recorded: true, storedErr: errors.New("unknown format"), desired: state("k", "a", "2"),
			want: decision{action: actionRebaseline, why: "its reroll.dev/consumed annotation is unreadable (unknown format)"}},
		{name: "roll-on-adopt does not roll recorded workloads", recorded: true, stored: state("k", "a", "1"), desired: state("k", "a", "1"), rollOnAdopt: true,
			want: decision{action: actionNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(tt.recorded, tt.stored, tt.storedErr, tt.desired, tt.rollOnAdopt)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCalculateConfigHash(t *testing.T) {
	k1, k2 := testKey(t, 1), testKey(t, 2)
	a := consumedState{keyID: k1.ID(), entries: map[string]string{"ConfigMap/a": "1"}}
	b := consumedState{keyID: k1.ID(), entries: map[string]string{"ConfigMap/a": "2"}}
	sameAsA := consumedState{keyID: k1.ID(), entries: map[string]string{"ConfigMap/a": "1"}}
	if calculateConfigHash(k1, a) != calculateConfigHash(k1, sameAsA) {
		t.Error("equal states hash differently")
	}
	if calculateConfigHash(k1, a) == calculateConfigHash(k1, b) {
		t.Error("different states hash the same")
	}
	if calculateConfigHash(k1, a) == calculateConfigHash(k2, a) {
		t.Error("hash does not depend on the key")
	}
}
