package controller

import (
	"fmt"
	"maps"
	"slices"
	"strings"
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

// cachedConfig is what the sync needs of one cached ConfigMap or Secret.
type cachedConfig struct {
	// digests maps each key to the digest of its value (see TransformForCache).
	digests map[string]string
	// ignored is true when the object carries reroll.dev/ignore: "true".
	ignored bool
	// malformedIgnore holds the ignore annotation's value when it is neither
	// "true" nor "false".
	malformedIgnore string
}

// configLookup returns the cached object ref names, or false when it does
// not exist.
type configLookup func(ref configRef) (cachedConfig, bool)

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

// Reasons of the problems calculateState reports.
const (
	// ReasonMissingReference: a non-optional ConfigMap or Secret is missing.
	ReasonMissingReference = "MissingReference"
	// ReasonMissingKey: a non-optional reference names a key that is missing.
	ReasonMissingKey = "MissingKey"
	// ReasonInvalidAnnotation: an annotation reroll reads is malformed.
	ReasonInvalidAnnotation = "InvalidAnnotation"
)

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
