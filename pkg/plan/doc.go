// Package plan holds reroll's pure decisions: what a pod template consumes
// (references.go), how a workload opts in, by reroll's annotations and
// Reloader's (annotations.go, optin.go, reloader.go), the digests the caches
// keep in place of values (digest.go), the keyed hashes (hash.go), the
// recorded state and the roll decision (state.go, plan.go), the progress of
// rollouts and the record of the rollouts reroll starts (progress.go), the
// waves (waves.go) and the rollout-safety rules (policy.go).
//
// Every function here is a function of its arguments: the package imports
// Kubernetes' API types and apimachinery, and no client, lister, informer,
// queue or clock. pkg/controller gathers the facts from its caches and asks
// this package what to do; the kubectl plugin asks it the same questions
// about a snapshot. Nothing here imports pkg/controller.
package plan
