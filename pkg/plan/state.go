package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// stateVersion prefixes the consumed annotation so its format can evolve.
const stateVersion = "v1"

// ConsumedState is what the consumed annotation records: the hash key it was
// made under and one fingerprint per consumed object (see EntryID).
type ConsumedState struct {
	KeyID   string
	Entries map[string]string
}

// String formats the state as "v1;key=<id>;<entry>=<fingerprint>;...", with
// entries sorted so that equal states have equal strings.
func (s ConsumedState) String() string {
	var b strings.Builder
	b.WriteString(stateVersion + ";key=" + s.KeyID)
	for _, id := range slices.Sorted(maps.Keys(s.Entries)) {
		b.WriteString(";" + id + "=" + s.Entries[id])
	}
	return b.String()
}

// ParseConsumedState parses the consumed annotation. Anything it cannot read
// is an error; the caller then re-baselines rather than guessing.
func ParseConsumedState(v string) (ConsumedState, error) {
	parts := strings.Split(v, ";")
	if len(parts) < 2 || parts[0] != stateVersion {
		return ConsumedState{}, fmt.Errorf("unknown format")
	}
	keyID, ok := strings.CutPrefix(parts[1], "key=")
	if !ok || keyID == "" {
		return ConsumedState{}, fmt.Errorf("no hash key id")
	}
	s := ConsumedState{KeyID: keyID, Entries: make(map[string]string, len(parts)-2)}
	for _, p := range parts[2:] {
		id, fp, ok := strings.Cut(p, "=")
		if !ok || id == "" || fp == "" {
			return ConsumedState{}, fmt.Errorf("malformed entry %q", p)
		}
		if _, dup := s.Entries[id]; dup {
			return ConsumedState{}, fmt.Errorf("duplicate entry %q", id)
		}
		s.Entries[id] = fp
	}
	return s, nil
}

// FingerprintAbsent is the fingerprint of an optional object that does not
// exist. It is not secret: existence is metadata, not content.
const FingerprintAbsent = "absent"

// fingerprintBytes is how many bytes of HMAC output a fingerprint keeps:
// 128 bits is far beyond what change detection needs.
const fingerprintBytes = 16

// EntryID names what a workload consumes from one object inside the
// consumed annotation: "ConfigMap/name" when it consumes every key, or
// "ConfigMap/name@<sig>" when it consumes only named keys, sig being a short
// digest of the key names. Changing which keys are consumed then shows up as
// a new entry (baselined) rather than as changed content (rolled): the pod
// template edit that changed the references already rolled the workload.
func EntryID(u Consumption) string {
	if u.AllKeys {
		return u.Ref.String()
	}
	keys := slices.Sorted(maps.Keys(u.Keys))
	sum := sha256.Sum256([]byte(strings.Join(keys, "\x00")))
	return u.Ref.String() + "@" + hex.EncodeToString(sum[:4])
}

// CalculateFingerprint returns the keyed fingerprint of the content u
// consumes from an object whose cached per-key digests are given, and the
// keys that a non-optional reference needs but the object lacks.
func CalculateFingerprint(key HashKey, u Consumption, digests map[string]string) (fp string, missing []string) {
	var keys []string
	if u.AllKeys {
		keys = slices.Sorted(maps.Keys(digests))
		for k, required := range u.Keys {
			if _, ok := digests[k]; !ok && required {
				missing = append(missing, k)
			}
		}
	} else {
		keys = slices.Sorted(maps.Keys(u.Keys))
		for _, k := range keys {
			if _, ok := digests[k]; !ok && u.Keys[k] {
				missing = append(missing, k)
			}
		}
	}
	slices.Sort(missing)
	fields := make([][]byte, 0, 1+2*len(keys))
	fields = append(fields, []byte(EntryID(u)))
	for _, k := range keys {
		// An absent optional key writes an empty digest, which no present
		// key can have.
		fields = append(fields, []byte(k), []byte(digests[k]))
	}
	return key.sum(fingerprintBytes, fields...), missing
}

// CalculateConfigHash returns the value written to the pod template's
// config-hash annotation for a consumed state.
func CalculateConfigHash(key HashKey, s ConsumedState) string {
	return key.sum(fingerprintBytes, []byte("reroll.dev/config-hash"), []byte(s.String()))
}

// CachedConfig is what the sync needs of one cached ConfigMap or Secret.
type CachedConfig struct {
	// digests maps each key to the digest of its value (see TransformForCache).
	Digests map[string]string
	// ignored is true when the object carries reroll.dev/ignore: "true"
	// (or Reloader's ignore annotation, with --reloader-annotations).
	Ignored bool
	// matched is true when the object carries Reloader's match annotation
	// (with --reloader-annotations), for search-mode consumers.
	Matched bool
	// malformedIgnore holds the ignore annotation's value when it is neither
	// "true" nor "false".
	MalformedIgnore string
}

// ConfigLookup returns the cached object ref names, or false when it does
// not exist.
type ConfigLookup func(ref ConfigRef) (CachedConfig, bool)

// NewConfigLookup returns the ConfigLookup over config objects (as
// TransformForCache leaves them) that get returns, reading Reloader's
// annotations too with reloader. It records in found the digests of what
// it looks up, nil for a missing object, so that a later message can name
// the keys of a re-created one.
func NewConfigLookup(get func(ConfigRef) (metav1.Object, bool), reloader bool, found map[ConfigRef]map[string]string) ConfigLookup {
	return func(ref ConfigRef) (CachedConfig, bool) {
		obj, ok := get(ref)
		if !ok {
			found[ref] = nil
			return CachedConfig{}, false
		}
		ignored, malformed := IsIgnored(obj.GetAnnotations(), reloader)
		cfg := CachedConfig{Digests: CachedDigests(obj), Ignored: ignored,
			Matched: reloader && obj.GetAnnotations()[ReloaderMatch] == "true"}
		if malformed {
			cfg.MalformedIgnore = obj.GetAnnotations()[AnnotationIgnore]
		}
		found[ref] = cfg.Digests
		return cfg, true
	}
}

// Problem is bad input found while computing a workload's state.
type Problem struct {
	// reason is the Event reason.
	Reason string
	// message says what is wrong, never a value.
	Message string
	// blocking is true when the workload must not be written: rolling it
	// would start pods that cannot run.
	Blocking bool
}

// CalculateState computes the consumed state a workload should have now.
// previous is the state recorded under the same key, or nil; its
// fingerprints are carried over for consumed objects whose changes must not
// roll: ignored objects, and optional objects that are gone (deleting an
// object rolls nothing; re-creating it rolls only if its content differs).
// With rollOnDelete (--reload-on-delete) a deleted object is recorded as
// absent instead, which rolls its consumers once, and a missing required
// one is reported without blocking.
func CalculateState(key HashKey, consumed []Consumption, lookup ConfigLookup, previous *ConsumedState, rollOnDelete bool) (ConsumedState, []Problem) {
	s := ConsumedState{KeyID: key.ID(), Entries: make(map[string]string, len(consumed))}
	var problems []Problem
	for _, u := range consumed {
		id := EntryID(u)
		carried, hasCarried := "", false
		if previous != nil {
			carried, hasCarried = previous.Entries[id]
		}
		obj, found := lookup(u.Ref)
		if u.NeedsMatch && (!found || !obj.Matched) {
			continue // search mode: not consumed unless the object matches
		}
		switch {
		case !found && u.Required && rollOnDelete:
			problems = append(problems, Problem{ReasonMissingReference,
				fmt.Sprintf("%s (referenced by %s) does not exist; rolling for its deletion (--reload-on-delete), though new pods cannot start until it does", u.Ref, u.From), false})
			s.Entries[id] = FingerprintAbsent
			continue
		case !found && u.Required:
			problems = append(problems, Problem{ReasonMissingReference,
				fmt.Sprintf("%s (referenced by %s) does not exist; not rolling until it does", u.Ref, u.From), true})
			// Recorded as absent (or as it was): its creation then rolls,
			// as the Warning says, when no state was recorded before.
			s.Entries[id] = FingerprintAbsent
			if hasCarried {
				s.Entries[id] = carried
			}
			continue
		case !found && hasCarried && !rollOnDelete:
			s.Entries[id] = carried
			continue
		case !found:
			s.Entries[id] = FingerprintAbsent
			continue
		}
		if obj.MalformedIgnore != "" {
			problems = append(problems, Problem{ReasonInvalidAnnotation,
				fmt.Sprintf("%s has %s=%q; only \"true\" ignores it, so it is not ignored", u.Ref, AnnotationIgnore, obj.MalformedIgnore), false})
		}
		if obj.Ignored && hasCarried {
			s.Entries[id] = carried
			continue
		}
		fp, missing := CalculateFingerprint(key, u, obj.Digests)
		if len(missing) > 0 {
			problems = append(problems, Problem{ReasonMissingKey,
				fmt.Sprintf("%s has no key %s (referenced by %s); not rolling until it does", u.Ref, strings.Join(missing, ", "), u.From), true})
			continue
		}
		s.Entries[id] = fp
	}
	return s, problems
}

// SyncAction is what a sync does to a workload.
type SyncAction int

const (
	// ActionNone: the recorded state is current; write nothing.
	ActionNone SyncAction = iota
	// ActionAdopt: first sight; record a baseline without rolling.
	ActionAdopt
	// ActionRebaseline: the recorded state was made under another hash key or
	// cannot be read, so it cannot be compared; record a new baseline
	// without rolling rather than risk a mass rollout.
	ActionRebaseline
	// ActionRecord: the set of consumed objects changed but no content that
	// was consumed before did; the pod template edit that changed the
	// references already rolled the workload, so only record the state.
	ActionRecord
	// ActionRoll: consumed content changed; record the state and roll.
	ActionRoll
)

// String names the action for logs.
func (a SyncAction) String() string {
	return [...]string{"none", "adopt", "rebaseline", "record", "roll"}[a]
}

// firstMount reports whether an entry that changed from old is a
// SecretProviderClass's first versions: its pods had reported none when the
// state was recorded, and report what they mounted, so nothing changed under
// them.
func firstMount(id, old string) bool {
	return old == FingerprintAbsent && strings.HasPrefix(id, string(TypeSecretProviderClass)+"/")
}

// Decision is the outcome of comparing the recorded and the desired state.
type Decision struct {
	Action SyncAction
	// changed lists the entries whose content changed (ActionRoll).
	Changed []string
	// why explains ActionRebaseline.
	Why string
}

// Decide compares the recorded consumed annotation (recorded is false when
// there is none) with the desired state.
func Decide(recorded bool, stored ConsumedState, storedErr error, desired ConsumedState, rollOnAdopt bool) Decision {
	switch {
	case !recorded && rollOnAdopt:
		return Decision{Action: ActionRoll}
	case !recorded:
		return Decision{Action: ActionAdopt}
	case storedErr != nil:
		return Decision{Action: ActionRebaseline, Why: fmt.Sprintf("its %s annotation is unreadable (%v)", AnnotationConsumed, storedErr)}
	case stored.KeyID != desired.KeyID:
		return Decision{Action: ActionRebaseline, Why: fmt.Sprintf("its %s annotation was made under hash key %s, and the current key is %s", AnnotationConsumed, stored.KeyID, desired.KeyID)}
	case maps.Equal(stored.Entries, desired.Entries):
		return Decision{Action: ActionNone}
	}
	var changed []string
	for id, fp := range desired.Entries {
		if old, ok := stored.Entries[id]; ok && old != fp && !firstMount(id, old) {
			changed = append(changed, id)
		}
	}
	if len(changed) == 0 {
		return Decision{Action: ActionRecord}
	}
	slices.Sort(changed)
	return Decision{Action: ActionRoll, Changed: changed}
}

// ConsumesChange reports whether the content of ref that a workload consumes
// (consumed, from CalculateConsumption) under the cached per-key digests
// differs from what its consumed annotation (recorded) holds under key. A
// workload whose annotation is missing, unreadable or made under another key
// does not: adopting or re-baselining it rolls nothing.
func ConsumesChange(key HashKey, recorded string, consumed []Consumption, ref ConfigRef, digests map[string]string) bool {
	state, err := ParseConsumedState(recorded)
	if err != nil || state.KeyID != key.ID() {
		return false
	}
	for _, u := range consumed {
		if u.Ref != ref {
			continue
		}
		fp, _ := CalculateFingerprint(key, u, digests)
		old, ok := state.Entries[EntryID(u)]
		return ok && old != fp
	}
	return false
}

// ChangedKeys lists the keys u consumes whose digest differs between two
// versions of an object, sorted.
func ChangedKeys(u Consumption, before, after map[string]string) []string {
	var candidates []string
	if u.AllKeys {
		candidates = slices.Collect(maps.Keys(before))
		for k := range after {
			if _, ok := before[k]; !ok {
				candidates = append(candidates, k)
			}
		}
	} else {
		candidates = slices.Collect(maps.Keys(u.Keys))
	}
	var changed []string
	for _, k := range candidates {
		b, inBefore := before[k]
		a, inAfter := after[k]
		if inBefore != inAfter || a != b {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	return changed
}
