package plan

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
	cm := ConfigRef{TypeConfigMap, "cm"}
	oneKey := Consumption{Ref: cm, Required: true, Keys: keysOf(true, "a")}
	optionalKey := Consumption{Ref: cm, Keys: keysOf(false, "a")}
	all := Consumption{Ref: cm, Required: true, AllKeys: true}
	base := map[string]string{"a": DigestValue("1"), "b": DigestValue("2")}
	with := func(k, v string) map[string]string {
		m := maps.Clone(base)
		if v == "" {
			delete(m, k)
		} else {
			m[k] = DigestValue(v)
		}
		return m
	}
	fp := func(u Consumption, d map[string]string) string {
		s, _ := CalculateFingerprint(key, u, d)
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
		{"value moved to another key", fp(all, map[string]string{"a": DigestValue("1")}), fp(all, map[string]string{"b": DigestValue("1")}), false},
		{"same content", fp(all, base), fp(all, maps.Clone(base)), true},
		{"other object, same content", fp(all, base), fp(Consumption{Ref: ConfigRef{TypeSecret, "cm"}, AllKeys: true}, base), false},
	}
	for _, tt := range tests {
		if (tt.a == tt.b) != tt.wantEqual {
			t.Errorf("%s: equal = %v, want %v", tt.name, tt.a == tt.b, tt.wantEqual)
		}
	}
	if fp(all, base) == func() string { s, _ := CalculateFingerprint(testKey(t, 2), all, base); return s }() {
		t.Error("fingerprint does not depend on the hash key")
	}
	if len(fp(all, base)) != 2*fingerprintBytes {
		t.Errorf("fingerprint %q has the wrong length", fp(all, base))
	}

	missingTests := []struct {
		name    string
		u       Consumption
		digests map[string]string
		want    []string
	}{
		{"present", oneKey, base, nil},
		{"required key missing", oneKey, with("a", ""), []string{"a"}},
		{"optional key missing", optionalKey, with("a", ""), nil},
		{"named required key missing alongside every key", Consumption{Ref: cm, AllKeys: true, Keys: keysOf(true, "z", "a")}, base, []string{"z"}},
	}
	for _, tt := range missingTests {
		if _, got := CalculateFingerprint(key, tt.u, tt.digests); !slices.Equal(got, tt.want) {
			t.Errorf("%s: missing = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestEntryID(t *testing.T) {
	cm := ConfigRef{TypeConfigMap, "cm"}
	all := EntryID(Consumption{Ref: cm, AllKeys: true, Keys: keysOf(true, "a")})
	if all != "ConfigMap/cm" {
		t.Errorf("every-key entry = %q", all)
	}
	ab := EntryID(Consumption{Ref: cm, Keys: keysOf(true, "a", "b")})
	ba := EntryID(Consumption{Ref: cm, Keys: map[string]bool{"b": false, "a": true}})
	a := EntryID(Consumption{Ref: cm, Keys: keysOf(true, "a")})
	if !strings.HasPrefix(ab, "ConfigMap/cm@") || ab != ba || ab == a {
		t.Errorf("named-key entries: ab=%q ba=%q a=%q; want ab == ba != a, prefixed", ab, ba, a)
	}
}

func TestConsumedStateRoundTrip(t *testing.T) {
	s := ConsumedState{KeyID: "k1", Entries: map[string]string{"Secret/b": "ff", "ConfigMap/a@0011": "00", "ConfigMap/a": "absent"}}
	want := "v1;key=k1;ConfigMap/a=absent;ConfigMap/a@0011=00;Secret/b=ff"
	if got := s.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	back, err := ParseConsumedState(want)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("parse = %+v, %v; want %+v", back, err, s)
	}
	empty := ConsumedState{KeyID: "k", Entries: map[string]string{}}
	if back, err := ParseConsumedState(empty.String()); err != nil || !reflect.DeepEqual(back, empty) {
		t.Fatalf("empty state: %+v, %v", back, err)
	}
}

func TestParseConsumedStateErrors(t *testing.T) {
	for _, v := range []string{"", "v1", "v2;key=k", "v1;key=", "v1;kee=k", "v1;key=k;a", "v1;key=k;=x", "v1;key=k;a=", "v1;key=k;a=1;a=2"} {
		if _, err := ParseConsumedState(v); err == nil {
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
		s, err := ParseConsumedState(v)
		if err != nil {
			return
		}
		again, err := ParseConsumedState(s.String())
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("%q parsed to %+v, which formats to %q, which parses to %+v, %v", v, s, s.String(), again, err)
		}
	})
}

func TestCalculateState(t *testing.T) {
	key := testKey(t, 1)
	cmRef, secretRef := ConfigRef{TypeConfigMap, "cm"}, ConfigRef{TypeSecret, "s"}
	required := Consumption{Ref: cmRef, Required: true, AllKeys: true, From: site("container app envFrom")}
	optional := Consumption{Ref: secretRef, AllKeys: true, From: site("volume s")}
	v1 := map[string]string{"a": DigestValue("1")}
	v2 := map[string]string{"a": DigestValue("2")}
	fp := func(u Consumption, d map[string]string) string { s, _ := CalculateFingerprint(key, u, d); return s }
	lookup := func(objs map[ConfigRef]CachedConfig) ConfigLookup {
		return func(r ConfigRef) (CachedConfig, bool) { c, ok := objs[r]; return c, ok }
	}
	tests := []struct {
		name         string
		consumed     []Consumption
		objs         map[ConfigRef]CachedConfig
		previous     *ConsumedState
		rollOnDelete bool
		want         map[string]string
		wantProblems []Problem
	}{
		{
			name:     "with --reload-on-delete a deleted optional object is absent",
			consumed: []Consumption{optional}, rollOnDelete: true,
			previous: &ConsumedState{Entries: map[string]string{"Secret/s": "old"}},
			want:     map[string]string{"Secret/s": FingerprintAbsent},
		},
		{
			name:     "with --reload-on-delete a deleted required object is absent, and does not block",
			consumed: []Consumption{required}, rollOnDelete: true,
			previous: &ConsumedState{Entries: map[string]string{"ConfigMap/cm": "old"}},
			want:     map[string]string{"ConfigMap/cm": FingerprintAbsent},
			wantProblems: []Problem{{ReasonMissingReference,
				"ConfigMap/cm (referenced by container app envFrom) does not exist; rolling for its deletion (--reload-on-delete), though new pods cannot start until it does", false}},
		},
		{
			name:     "present objects are fingerprinted",
			consumed: []Consumption{required, optional},
			objs:     map[ConfigRef]CachedConfig{cmRef: {Digests: v1}, secretRef: {Digests: v2}},
			want:     map[string]string{"ConfigMap/cm": fp(required, v1), "Secret/s": fp(optional, v2)},
		},
		{
			name:     "missing optional object without history is absent",
			consumed: []Consumption{optional},
			want:     map[string]string{"Secret/s": FingerprintAbsent},
		},
		{
			name:     "deleted optional object keeps its fingerprint",
			consumed: []Consumption{optional},
			previous: &ConsumedState{Entries: map[string]string{"Secret/s": "old"}},
			want:     map[string]string{"Secret/s": "old"},
		},
		{
			name:     "missing required object blocks, and is recorded as absent",
			consumed: []Consumption{required, optional},
			objs:     map[ConfigRef]CachedConfig{secretRef: {Digests: v2}},
			want:     map[string]string{"ConfigMap/cm": FingerprintAbsent, "Secret/s": fp(optional, v2)},
			wantProblems: []Problem{{ReasonMissingReference,
				"ConfigMap/cm (referenced by container app envFrom) does not exist; not rolling until it does", true}},
		},
		{
			name:     "missing required key blocks",
			consumed: []Consumption{{Ref: cmRef, Required: true, Keys: keysOf(true, "b"), From: site("container app env B")}},
			objs:     map[ConfigRef]CachedConfig{cmRef: {Digests: v1}},
			want:     map[string]string{},
			wantProblems: []Problem{{ReasonMissingKey,
				"ConfigMap/cm has no key b (referenced by container app env B); not rolling until it does", true}},
		},
		{
			name:     "ignored object keeps its recorded fingerprint",
			consumed: []Consumption{required},
			objs:     map[ConfigRef]CachedConfig{cmRef: {Digests: v2, Ignored: true}},
			previous: &ConsumedState{Entries: map[string]string{"ConfigMap/cm": "old"}},
			want:     map[string]string{"ConfigMap/cm": "old"},
		},
		{
			name:     "ignored object without history is fingerprinted once",
			consumed: []Consumption{required},
			objs:     map[ConfigRef]CachedConfig{cmRef: {Digests: v2, Ignored: true}},
			want:     map[string]string{"ConfigMap/cm": fp(required, v2)},
		},
		{
			name:     "malformed ignore warns and does not ignore",
			consumed: []Consumption{required},
			objs:     map[ConfigRef]CachedConfig{cmRef: {Digests: v2, MalformedIgnore: "yes"}},
			previous: &ConsumedState{Entries: map[string]string{"ConfigMap/cm": "old"}},
			want:     map[string]string{"ConfigMap/cm": fp(required, v2)},
			wantProblems: []Problem{{ReasonInvalidAnnotation,
				`ConfigMap/cm has reroll.dev/ignore="yes"; only "true" ignores it, so it is not ignored`, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := CalculateState(key, tt.consumed, lookup(tt.objs), tt.previous, tt.rollOnDelete)
			if got.KeyID != key.ID() || !maps.Equal(got.Entries, tt.want) {
				t.Errorf("state = %+v, want entries %+v", got, tt.want)
			}
			if !reflect.DeepEqual(problems, tt.wantProblems) {
				t.Errorf("problems = %+v\nwant       %+v", problems, tt.wantProblems)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	state := func(keyID string, kv ...string) ConsumedState {
		s := ConsumedState{KeyID: keyID, Entries: map[string]string{}}
		for i := 0; i < len(kv); i += 2 {
			s.Entries[kv[i]] = kv[i+1]
		}
		return s
	}
	tests := []struct {
		name        string
		recorded    bool
		stored      ConsumedState
		storedErr   error
		desired     ConsumedState
		rollOnAdopt bool
		want        Decision
	}{
		{name: "first sight adopts", desired: state("k", "a", "1"), want: Decision{Action: ActionAdopt}},
		{name: "first sight rolls with --roll-on-adopt", desired: state("k", "a", "1"), rollOnAdopt: true, want: Decision{Action: ActionRoll}},
		{name: "unchanged", recorded: true, stored: state("k", "a", "1"), desired: state("k", "a", "1"), want: Decision{Action: ActionNone}},
		{name: "content changed", recorded: true, stored: state("k", "a", "1", "b", "2", "c", "3"), desired: state("k", "a", "9", "b", "2", "c", "8"),
			want: Decision{Action: ActionRoll, Changed: []string{"a", "c"}}},
		{name: "reference added", recorded: true, stored: state("k", "a", "1"), desired: state("k", "a", "1", "b", "2"), want: Decision{Action: ActionRecord}},
		{name: "reference removed", recorded: true, stored: state("k", "a", "1", "b", "2"), desired: state("k", "a", "1"), want: Decision{Action: ActionRecord}},
		{name: "reference added while another changed", recorded: true, stored: state("k", "a", "1"), desired: state("k", "a", "2", "b", "2"),
			want: Decision{Action: ActionRoll, Changed: []string{"a"}}},
		{name: "other key re-baselines", recorded: true, stored: state("old", "a", "1"), desired: state("k", "a", "2"),
			want: Decision{Action: ActionRebaseline, Why: "its reroll.dev/consumed annotation was made under hash key old, and the current key is k"}},
		{name: "unreadable re-baselines", recorded: true, storedErr: errors.New("unknown format"), desired: state("k", "a", "2"),
			want: Decision{Action: ActionRebaseline, Why: "its reroll.dev/consumed annotation is unreadable (unknown format)"}},
		{name: "roll-on-adopt does not roll recorded workloads", recorded: true, stored: state("k", "a", "1"), desired: state("k", "a", "1"), rollOnAdopt: true,
			want: Decision{Action: ActionNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.recorded, tt.stored, tt.storedErr, tt.desired, tt.rollOnAdopt)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCalculateConfigHash(t *testing.T) {
	k1, k2 := testKey(t, 1), testKey(t, 2)
	a := ConsumedState{KeyID: k1.ID(), Entries: map[string]string{"ConfigMap/a": "1"}}
	b := ConsumedState{KeyID: k1.ID(), Entries: map[string]string{"ConfigMap/a": "2"}}
	sameAsA := ConsumedState{KeyID: k1.ID(), Entries: map[string]string{"ConfigMap/a": "1"}}
	if CalculateConfigHash(k1, a) != CalculateConfigHash(k1, sameAsA) {
		t.Error("equal states hash differently")
	}
	if CalculateConfigHash(k1, a) == CalculateConfigHash(k1, b) {
		t.Error("different states hash the same")
	}
	if CalculateConfigHash(k1, a) == CalculateConfigHash(k2, a) {
		t.Error("hash does not depend on the key")
	}
}

func TestConsumesChange(t *testing.T) {
	key := testKey(t, 4)
	cfg := ConfigRef{Type: TypeConfigMap, Name: "cfg"}
	onlyA := Consumption{Ref: cfg, Keys: map[string]bool{"a": true}, Required: true}
	before := map[string]string{"a": DigestValue("1"), "b": DigestValue("1")}
	recorded := ConsumedState{KeyID: key.ID(), Entries: map[string]string{}}
	fp, _ := CalculateFingerprint(key, onlyA, before)
	recorded.Entries[EntryID(onlyA)] = fp
	tests := []struct {
		name     string
		key      HashKey
		recorded string
		digests  map[string]string
		ref      ConfigRef
		want     bool
	}{
		{name: "unchanged", key: key, recorded: recorded.String(), digests: before, ref: cfg},
		{name: "its key changed", key: key, recorded: recorded.String(), digests: map[string]string{"a": DigestValue("2"), "b": DigestValue("1")}, ref: cfg, want: true},
		{name: "another key changed", key: key, recorded: recorded.String(), digests: map[string]string{"a": DigestValue("1"), "b": DigestValue("2")}, ref: cfg},
		{name: "another object", key: key, recorded: recorded.String(), digests: map[string]string{"a": DigestValue("2")}, ref: ConfigRef{Type: TypeSecret, Name: "cfg"}},
		{name: "not adopted", key: key, recorded: "", digests: map[string]string{"a": DigestValue("2")}, ref: cfg},
		{name: "recorded under another hash key", key: testKey(t, 5), recorded: recorded.String(), digests: map[string]string{"a": DigestValue("2")}, ref: cfg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ConsumesChange(tt.key, tt.recorded, []Consumption{onlyA}, tt.ref, tt.digests); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChangedKeys(t *testing.T) {
	before := map[string]string{"a": "1", "b": "1", "gone": "1"}
	after := map[string]string{"a": "2", "b": "1", "new": "1"}
	tests := []struct {
		name string
		u    Consumption
		want string
	}{
		{name: "every key", u: Consumption{AllKeys: true}, want: "a,gone,new"},
		{name: "named keys only", u: Consumption{Keys: map[string]bool{"b": true, "new": false}}, want: "new"},
		{name: "unchanged named key", u: Consumption{Keys: map[string]bool{"b": true}}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(ChangedKeys(tt.u, before, after), ","); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
