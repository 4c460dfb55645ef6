package main

import (
	"context"
	"fmt"
)

const (
	// selectedLabel marks the ConfigMaps and Secrets the selector variants'
	// --config-selector selects.
	selectedLabel = "bench.reroll.dev/selected"
	// selectedShare is the share of the memory scenario's ConfigMaps and
	// Secrets the selector variants label: most objects are not selected.
	selectedShare = 0.1
)

// runMemorySelector is the memory scenario with only a tenth of the
// ConfigMaps and Secrets labelled (see selectorVariant), and reroll
// watching only those (--config-selector).
func runMemorySelector(ctx context.Context, e *env, res *scenarioResult) error {
	return runMemoryVariant(ctx, e, res, selectorVariant(true))
}

// runMemorySelectorBaseline seeds what runMemorySelector does and runs
// reroll without --config-selector: the difference between the two is the
// memory the selector saves.
func runMemorySelectorBaseline(ctx context.Context, e *env, res *scenarioResult) error {
	return runMemoryVariant(ctx, e, res, selectorVariant(false))
}

// selectorVariant is the memory scenario with selectedShare of its
// ConfigMaps and Secrets labelled selectedLabel=true and only as many
// Deployments as consume those, one ConfigMap and one Secret each. reroll
// runs with --profiling, for its live heap at the end; with selector, also
// with --config-selector=selectedLabel=true.
func selectorVariant(selector bool) memoryVariant {
	v := memoryVariant{selected: selectedShare, args: []string{"--profiling"}, after: addLiveHeap}
	if selector {
		v.args = append(v.args, fmt.Sprintf("--config-selector=%s=true", selectedLabel))
	}
	return v
}
