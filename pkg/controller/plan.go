package controller

import "fmt"

// planSettings are the options that shape every plan.
type planSettings struct {
	hashKey     HashKey
	optIn       optInSettings
	rollOnAdopt bool
}

// planInput is what one workload's plan is made from, all read from the
// caches (or, for recorded, reroll's dry-run memory).
type planInput struct {
	// annotations are the workload's annotations reroll reads (with
	// Reloader's from its pod template when it has none; see optInOf).
	annotations map[string]string
	// references are its pod template's references (see walkPodSpec).
	references []podReference
	// templateError says why a custom workload has no usable template.
	templateError string
	// recorded is the workload's consumed annotation; hasRecorded is false
	// when it has none.
	recorded    string
	hasRecorded bool
	// lookup reads the consumed ConfigMaps and Secrets.
	lookup configLookup
}

// syncPlan is what one sync does to a workload, and why.
type syncPlan struct {
	// optedOut: the workload is not opted in (any more): forget it.
	optedOut bool
	// problems is the bad input found; each is reported as a Warning.
	problems []problem
	// blocked: a problem stops the sync from writing anything.
	blocked bool
	// consumed is what the workload consumes.
	consumed []consumption
	// desired is the consumed state it should record now.
	desired consumedState
	// decision is what to write, if anything (not set when blocked).
	decision decision
}

// planSync decides, from cached state alone and with no client, what a sync
// of one workload does: nothing, warn and stop, or which write (adopt,
// rebaseline, record, roll) to make. It is the decision the controller and
// the explanations share.
func planSync(in planInput, s planSettings) syncPlan {
	o, conflicts, err := parseOptIn(in.annotations, s.optIn)
	if err != nil {
		return blockedPlan(problem{ReasonInvalidAnnotation, fmt.Sprintf("%v; not rolling until it is fixed", err), true})
	}
	var notes []problem
	for _, c := range conflicts {
		notes = append(notes, problem{ReasonConflictingAnnotations, c, false})
	}
	if !o.enabled() {
		return syncPlan{optedOut: true, problems: notes}
	}
	if in.templateError != "" {
		return blockedPlan(problem{ReasonInvalidTemplate, in.templateError + "; not rolling until it is fixed", true})
	}
	p := syncPlan{consumed: calculateConsumption(in.references, o)}
	if len(p.consumed) > MaxReferences {
		return blockedPlan(problem{ReasonTooManyReferences, fmt.Sprintf(
			"consumes %d ConfigMaps and Secrets, more than the %d reroll handles; not rolling", len(p.consumed), MaxReferences), true})
	}
	var stored consumedState
	var storedErr error
	var previous *consumedState
	if in.hasRecorded {
		stored, storedErr = parseConsumedState(in.recorded)
		if storedErr == nil && stored.keyID == s.hashKey.ID() {
			previous = &stored
		}
	}
	p.desired, p.problems = calculateState(s.hashKey, p.consumed, in.lookup, previous)
	p.problems = append(notes, p.problems...)
	for _, pr := range p.problems {
		p.blocked = p.blocked || pr.blocking
	}
	if !p.blocked {
		p.decision = decide(in.hasRecorded, stored, storedErr, p.desired, s.rollOnAdopt)
	}
	return p
}

// blockedPlan is the plan of a workload that bad input stops before its
// state can be computed.
func blockedPlan(p problem) syncPlan {
	return syncPlan{problems: []problem{p}, blocked: true}
}
