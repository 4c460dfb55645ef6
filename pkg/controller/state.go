package controller

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

// consumedState is what the consumed annotation records: the hash key it was
// made under and one fingerprint per consumed object (see entryID).
type consumedState struct {
	keyID   string
	entries map[string]string
}

// String formats the state as "v1;key=<id>;<entry>=<fingerprint>;...", with
// entries sorted so that equal states have equal strings.
func (s consumedState) String() string {
	var b strings.Builder
	b.WriteString(stateVersion + ";key=" + s.keyID)
	for _, id := range slices.Sorted(maps.Keys(s.entries)) {
		b.WriteString(";" + id + "=" + s.entries[id])
	}
	return b.String()
}

// parseConsumedState parses the consumed annotation. Anything it cannot read
// is an error; the caller then re-baselines rather than guessing.
func parseConsumedState(v string) (consumedState, error) {
	parts := strings.Split(v, ";")
	if len(parts) < 2 || parts[0] != stateVersion {
		return consumedState{}, fmt.Errorf("unknown format")
	}
	keyID, ok := strings.CutPrefix(parts[1], "key=")
	if !ok || keyID == "" {
		return consumedState{}, fmt.Errorf("no hash key id")
	}
	s := consumedState{keyID: keyID, entries: make(map[string]string, len(parts)-2)}
	for _, p := range parts[2:] {
		id, fp, ok := strings.Cut(p, "=")
		if !ok || id == "" || fp == "" {
			return consumedState{}, fmt.Errorf("malformed entry %q", p)
		}
		if _, dup := s.entries[id]; dup {
			return consumedState{}, fmt.Errorf("duplicate entry %q", id)
		}
		s.entries[id] = fp
	}
	return s, nil
}

// fingerprintAbsent is the fingerprint of an optional object that does not
// exist. It is not secret: existence is metadata, not content.
const fingerprintAbsent = "absent"

// fingerprintBytes is how many bytes of HMAC output a fingerprint keeps:
// 128 bits is far beyond what change detection needs.
const fingerprintBytes = 16

// entryID names what a workload consumes from one object inside the
// consumed annotation: "ConfigMap/name" when it consumes every key, or
// "ConfigMap/name@<sig>" when it consumes only named keys, sig being a short
// digest of the key names. Changing which keys are consumed then shows up as
// a new entry (baselined) rather than as changed content (rolled): the pod
// template edit that changed the references already rolled the workload.
func entryID(u consumption) string {
	if u.allKeys {
		return u.ref.String()
	}
	keys := slices.Sorted(maps.Keys(u.keys))
	sum := sha256.Sum256([]byte(strings.Join(keys, "\x00")))
	return u.ref.String() + "@" + hex.EncodeToString(sum[:4])
}

// calculateFingerprint returns the keyed fingerprint of the content u
// consumes from an object whose cached per-key digests are given, and the
// keys that a non-optional reference needs but the object lacks.
func calculateFingerprint(key HashKey, u consumption, digests map[string]string) (fp string, missing []string) {
	var keys []string
	if u.allKeys {
		keys = slices.Sorted(maps.Keys(digests))
		for k, required := range u.keys {
			if _, ok := digests[k]; !ok && required {
				missing = append(missing, k)
			}
		}
	} else {
		keys = slices.Sorted(maps.Keys(u.keys))
		for _, k := range keys {
			if _, ok := digests[k]; !ok && u.keys[k] {
				missing = append(missing, k)
			}
		}
	}
	slices.Sort(missing)
	fields := make([][]byte, 0, 1+2*len(keys))
	fields = append(fields, []byte(entryID(u)))
	for _, k := range keys {
		// An absent optional key writes an empty digest, which no present
		// key can have.
		fields = append(fields, []byte(k), []byte(digests[k]))
	}
	return key.sum(fingerprintBytes, fields...), missing
}

// calculateConfigHash returns the value written to the pod template's
// config-hash annotation for a consumed state.
func calculateConfigHash(key HashKey, s consumedState) string {
	return key.sum(fingerprintBytes, []byte("reroll.dev/config-hash"), []byte(s.String()))
}

// cachedConfig is what the sync needs of one cached ConfigMap or Secret.
type cachedConfig struct {
	// digests maps each key to the digest of its value (see TransformForCache).
	digests map[string]string
	// ignored is true when the object carries reroll.dev/ignore: "true"
	// (or Reloader's ignore annotation, with --reloader-annotations).
	ignored bool
	// matched is true when the object carries Reloader's match annotation
	// (with --reloader-annotations), for search-mode consumers.
	matched bool
	// malformedIgnore holds the ignore annotation's value when it is neither
	// "true" nor "false".
	malformedIgnore string
}

// configLookup returns the cached object ref names, or false when it does
// not exist.
type configLookup func(ref configRef) (cachedConfig, bool)

// newConfigLookup returns the configLookup over config objects (as
// TransformForCache leaves them) that get returns, reading Reloader's
// annotations too with reloader. It records in found the digests of what
// it looks up, nil for a missing object, so that a later message can name
// the keys of a re-created one.
func newConfigLookup(get func(configRef) (metav1.Object, bool), reloader bool, found map[configRef]map[string]string) configLookup {
	return func(ref configRef) (cachedConfig, bool) {
		obj, ok := get(ref)
		if !ok {
			found[ref] = nil
			return cachedConfig{}, false
		}
		ignored, malformed := isIgnored(obj.GetAnnotations(), reloader)
		cfg := cachedConfig{digests: cachedDigests(obj), ignored: ignored,
			matched: reloader && obj.GetAnnotations()[reloaderMatch] == "true"}
		if malformed {
			cfg.malformedIgnore = obj.GetAnnotations()[AnnotationIgnore]
		}
		found[ref] = cfg.digests
		return cfg, true
	}
}

// problem is bad input found while computing a workload's state.
type problem struct {
	// reason is the Event reason.
	reason string
	// message says what is wrong, never a value.
	message string
	// blocking is true when the workload must not be written: rolling it
	// would start pods that cannot run.
	blocking bool
}

// calculateState computes the consumed state a workload should have now.
// previous is the state recorded under the same key, or nil; its
// fingerprints are carried over for consumed objects whose changes must not
// roll: ignored objects, and optional objects that are gone (deleting an
// object rolls nothing; re-creating it rolls only if its content differs).
func calculateState(key HashKey, consumed []consumption, lookup configLookup, previous *consumedState) (consumedState, []problem) {
	s := consumedState{keyID: key.ID(), entries: make(map[string]string, len(consumed))}
	var problems []problem
	for _, u := range consumed {
		id := entryID(u)
		carried, hasCarried := "", false
		if previous != nil {
			carried, hasCarried = previous.entries[id]
		}
		obj, found := lookup(u.ref)
		if u.needsMatch && (!found || !obj.matched) {
			continue // search mode: not consumed unless the object matches
		}
		switch {
		case !found && u.required:
			problems = append(problems, problem{ReasonMissingReference,
				fmt.Sprintf("%s (referenced by %s) does not exist; not rolling until it does", u.ref, u.from), true})
			continue
		case !found && hasCarried:
			s.entries[id] = carried
			continue
		case !found:
			s.entries[id] = fingerprintAbsent
			continue
		}
		if obj.malformedIgnore != "" {
			problems = append(problems, problem{ReasonInvalidAnnotation,
				fmt.Sprintf("%s has %s=%q; only \"true\" ignores it, so it is not ignored", u.ref, AnnotationIgnore, obj.malformedIgnore), false})
		}
		if obj.ignored && hasCarried {
			s.entries[id] = carried
			continue
		}
		fp, missing := calculateFingerprint(key, u, obj.digests)
		if len(missing) > 0 {
			problems = append(problems, problem{ReasonMissingKey,
				fmt.Sprintf("%s has no key %s (referenced by %s); not rolling until it does", u.ref, strings.Join(missing, ", "), u.from), true})
			continue
		}
		s.entries[id] = fp
	}
	return s, problems
}

// syncAction is what a sync does to a workload.
type syncAction int

const (
	// actionNone: the recorded state is current; write nothing.
	actionNone syncAction = iota
	// actionAdopt: first sight; record a baseline without rolling.
	actionAdopt
	// actionRebaseline: the recorded state was made under another hash key or
	// cannot be read, so it cannot be compared; record a new baseline
	// without rolling rather than risk a mass rollout.
	actionRebaseline
	// actionRecord: the set of consumed objects changed but no content that
	// was consumed before did; the pod template edit that changed the
	// references already rolled the workload, so only record the state.
	actionRecord
	// actionRoll: consumed content changed; record the state and roll.
	actionRoll
)

// String names the action for logs.
func (a syncAction) String() string {
	return [...]string{"none", "adopt", "rebaseline", "record", "roll"}[a]
}

// decision is the outcome of comparing the recorded and the desired state.
type decision struct {
	action syncAction
	// changed lists the entries whose content changed (actionRoll).
	changed []string
	// why explains actionRebaseline.
	why string
}

// decide compares the recorded consumed annotation (recorded is false when
// there is none) with the desired state.
func decide(recorded bool, stored consumedState, storedErr error, desired consumedState, rollOnAdopt bool) decision {
	switch {
	case !recorded && rollOnAdopt:
		return decision{action: actionRoll}
	case !recorded:
		return decision{action: actionAdopt}
	case storedErr != nil:
		return decision{action: actionRebaseline, why: fmt.Sprintf("its %s annotation is unreadable (%v)", AnnotationConsumed, storedErr)}
	case stored.keyID != desired.keyID:
		return decision{action: actionRebaseline, why: fmt.Sprintf("its %s annotation was made under hash key %s, and the current key is %s", AnnotationConsumed, stored.keyID, desired.keyID)}
	case maps.Equal(stored.entries, desired.entries):
		return decision{action: actionNone}
	}
	var changed []string
	for id, fp := range desired.entries {
		if old, ok := stored.entries[id]; ok && old != fp {
			changed = append(changed, id)
		}
	}
	if len(changed) == 0 {
		return decision{action: actionRecord}
	}
	slices.Sort(changed)
	return decision{action: actionRoll, changed: changed}
}
