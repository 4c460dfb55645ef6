package controller

// applyOutcome is what apply did.
type applyOutcome struct {
	result applyResult
	// rejection is the API server's answer to a rejected patch.
	rejection error
}

// applyResult says which write apply made.
type applyResult int

const (
	// applyNothing: the plan needs no write.
	applyNothing applyResult = iota
	// applyDryRun: the write was only remembered (--dry-run).
	applyDryRun
	// applyWritten: the patch was made.
	applyWritten
	// applyGone: the workload was deleted before the patch.
	applyGone
	// applyRejected: the API server rejected the patch as invalid.
	applyRejected
	// applyNotLeader: the write was skipped, as this replica no longer
	// leads (Options.MayWrite).
	applyNotLeader
	// applyNotified: a roll was sent to the webhook (--webhook-url)
	// instead, and its state recorded.
	applyNotified
)
