package plan

import "fmt"

// Settings are the options that shape every plan.
type Settings struct {
	HashKey     HashKey
	OptIn       OptInSettings
	RollOnAdopt bool
	// RollOnDelete is --reload-on-delete: a deleted object rolls its
	// consumers (see CalculateState).
	RollOnDelete bool
}

// Input is what one workload's plan is made from, all read from the
// caches (or, for recorded, reroll's dry-run memory).
type Input struct {
	// annotations are the workload's annotations reroll reads (with
	// Reloader's from its pod template when it has none; see optInOf).
	Annotations map[string]string
	// references are its pod template's references (see WalkPodSpec).
	References []PodReference
	// templateError says why a custom workload has no usable template.
	TemplateError string
	// recorded is the workload's consumed annotation; hasRecorded is false
	// when it has none.
	Recorded    string
	HasRecorded bool
	// Lookup reads the consumed ConfigMaps and Secrets.
	Lookup ConfigLookup
	// CanRestart says the kind can roll by a restart (Argo Rollouts).
	CanRestart bool
	// Names lists the names of the objects of a type in the workload's
	// namespace, for the patterns of Reloader's reload annotations; nil
	// lists none.
	Names func(ConfigType) []string
	// FromWorkloadRef says the references come from a template the
	// workload runs but does not hold (Argo's spec.workloadRef): it rolls by
	// a restart, whatever its strategy.
	FromWorkloadRef bool
}

// Plan is what one sync does to a workload, and why.
type Plan struct {
	// optedOut: the workload is not opted in (any more): forget it.
	OptedOut bool
	// problems is the bad input found; each is reported as a Warning.
	Problems []Problem
	// blocked: a problem stops the sync from writing anything.
	Blocked bool
	// consumed is what the workload consumes.
	Consumed []Consumption
	// desired is the consumed state it should record now.
	Desired ConsumedState
	// Decision is what to write, if anything (not set when blocked).
	Decision Decision
	// Strategy is how a roll is written.
	Strategy Strategy
}

// Compute decides, from cached state alone and with no client, what a sync
// of one workload does: nothing, warn and stop, or which write (adopt,
// rebaseline, record, roll) to make. It is the decision the controller and
// the explanations share.
func Compute(in Input, s Settings) Plan {
	o, conflicts, err := ParseOptIn(in.Annotations, s.OptIn)
	if err != nil {
		return blockedPlan(Problem{ReasonInvalidAnnotation, fmt.Sprintf("%v; not rolling until it is fixed", err), true})
	}
	var notes []Problem
	for _, c := range conflicts {
		notes = append(notes, Problem{ReasonConflictingAnnotations, c, false})
	}
	if !o.Enabled() {
		return Plan{OptedOut: true, Problems: notes}
	}
	if o.HasPatterns() && in.Names != nil {
		o = o.WithMatches(in.Names)
	}
	if in.TemplateError != "" {
		return blockedPlan(Problem{ReasonInvalidTemplate, in.TemplateError + "; not rolling until it is fixed", true})
	}
	strategy, err := ParseStrategy(in.Annotations, s.OptIn.Reloader, in.CanRestart)
	if err != nil {
		return blockedPlan(Problem{ReasonInvalidAnnotation, fmt.Sprintf("%v; not rolling until it is fixed", err), true})
	}
	if in.FromWorkloadRef {
		// Changing the template would mean writing the referenced
		// Deployment, which its owner (often GitOps) manages.
		strategy = StrategyRestart
	}
	p := Plan{Consumed: CalculateConsumption(in.References, o), Strategy: strategy}
	if len(p.Consumed) > MaxReferences {
		return blockedPlan(Problem{ReasonTooManyReferences, fmt.Sprintf(
			"consumes %d ConfigMaps and Secrets, more than the %d reroll handles; not rolling", len(p.Consumed), MaxReferences), true})
	}
	var stored ConsumedState
	var storedErr error
	var previous *ConsumedState
	if in.HasRecorded {
		stored, storedErr = ParseConsumedState(in.Recorded)
		if storedErr == nil && stored.KeyID == s.HashKey.ID() {
			previous = &stored
		}
	}
	p.Desired, p.Problems = CalculateState(s.HashKey, p.Consumed, in.Lookup, previous, s.RollOnDelete)
	p.Problems = append(notes, p.Problems...)
	for _, pr := range p.Problems {
		p.Blocked = p.Blocked || pr.Blocking
	}
	if p.Blocked && !in.HasRecorded && onlyMissingReferences(p.Problems) {
		// First sight of a workload whose objects are missing: record the
		// missing ones as absent, so that each rolls it once when it
		// appears (Reloader's reload-on-create), instead of being adopted
		// silently as if the pods had started with it.
		p.Blocked = false
		p.Decision = Decision{Action: ActionAdopt}
		return p
	}
	if !p.Blocked {
		p.Decision = Decide(in.HasRecorded, stored, storedErr, p.Desired, s.RollOnAdopt)
	}
	return p
}

// onlyMissingReferences reports whether every blocking problem is a missing
// object.
func onlyMissingReferences(problems []Problem) bool {
	for _, pr := range problems {
		if pr.Blocking && pr.Reason != ReasonMissingReference {
			return false
		}
	}
	return true
}

// blockedPlan is the plan of a workload that bad input stops before its
// state can be computed.
func blockedPlan(p Problem) Plan {
	return Plan{Problems: []Problem{p}, Blocked: true}
}
