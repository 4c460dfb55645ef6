package plan

import "fmt"

// How a roll is written. Most kinds roll by a change of their pod template;
// an Argo Rollout can also be restarted, which recreates its pods without a
// new revision (and so without its canary steps and analysis).

// AnnotationStrategy on a workload says how it rolls: "template" (the
// default: the config hash on the pod template, a new revision) or
// "restart" (Argo Rollouts only: spec.restartAt).
const AnnotationStrategy = "reroll.dev/strategy"

// ReloaderRolloutStrategy is Reloader's equivalent on Argo Rollouts, read
// with --reloader-annotations: "rollout" (the default) or "restart".
const ReloaderRolloutStrategy = "reloader.stakater.com/rollout-strategy"

// Strategy is how a roll is written.
type Strategy int

const (
	// StrategyTemplate changes the pod template's config hash: the
	// workload's controller rolls a new revision through its own strategy.
	StrategyTemplate Strategy = iota
	// StrategyRestart sets an Argo Rollout's spec.restartAt: its pods are
	// recreated, the revision stays.
	StrategyRestart
)

// String names the strategy as the annotation does.
func (s Strategy) String() string {
	return [...]string{"template", "restart"}[s]
}

// ParseStrategy reads a workload's strategy from its annotations (with
// Reloader's when reloader), for a kind that can restart or not. reroll's
// annotation wins over Reloader's. An unknown value, or reroll's restart on
// a kind that cannot restart, is an error: guessing would roll in a way the
// user did not ask for. Reloader's restart on another kind is ignored, as
// Reloader ignores it.
func ParseStrategy(annotations map[string]string, reloader, canRestart bool) (Strategy, error) {
	key, v, ok := AnnotationStrategy, "", false
	if v, ok = annotations[AnnotationStrategy]; !ok && reloader {
		key = ReloaderRolloutStrategy
		if v, ok = annotations[ReloaderRolloutStrategy]; ok && v == "rollout" {
			v = "template"
		}
	}
	switch {
	case !ok || v == "template":
		return StrategyTemplate, nil
	case v == "restart" && canRestart:
		return StrategyRestart, nil
	case v == "restart" && key == ReloaderRolloutStrategy:
		return StrategyTemplate, nil // Reloader reads it on Argo Rollouts only, and ignores it elsewhere
	case v == "restart":
		return StrategyTemplate, fmt.Errorf("%s=%q is for Argo Rollouts only; this kind rolls by its pod template", key, v)
	}
	want := `"template" or "restart"`
	if key == ReloaderRolloutStrategy {
		want = `"rollout" or "restart"`
	}
	return StrategyTemplate, fmt.Errorf("%s must be %s, not %q", key, want, v)
}
