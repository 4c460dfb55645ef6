package plan

// The reasons of the Events reroll reports on workloads, all in one place:
// users filter and alert on them, so they are part of reroll's API.
const (
	// ReasonRolled: consumed content changed and the workload was rolled.
	ReasonRolled = "Rolled"
	// ReasonRebaselined: the recorded state could not be compared (another
	// hash key, or unreadable); a new baseline was recorded without rolling.
	ReasonRebaselined = "Rebaselined"
	// ReasonDryRun: what reroll would have written under --dry-run.
	ReasonDryRun = "DryRun"
	// ReasonWebhookSent: with --webhook-url, a roll was sent to the
	// webhook instead of made.
	ReasonWebhookSent = "WebhookSent"
	// ReasonRolloutHeld: a planned roll waits for a pause, a wave, the
	// in-flight cap or the pacing (see gate.go); it happens once, to the
	// content current then, when the hold ends.
	ReasonRolloutHeld = "RolloutHeld"
	// ReasonRolloutHalted (Warning): a planned roll waits because a consumer
	// reroll rolled for the same change failed; the failed consumer gets one
	// too.
	ReasonRolloutHalted = "RolloutHalted"
	// ReasonRolloutThrottled (Warning): the workload rolled too often
	// (--max-rolls-per-workload); it rolls once more when the window allows.
	ReasonRolloutThrottled = "RolloutThrottled"

	// The Warnings below report bad input; the workload is not written
	// until it is fixed, except for a malformed ignore annotation on a
	// consumed object (reported, and the object is not ignored).

	// ReasonInvalidAnnotation: an annotation reroll reads is malformed.
	ReasonInvalidAnnotation = "InvalidAnnotation"
	// ReasonConflictingAnnotations: reroll's annotation and Reloader's say
	// different things about the same setting; reroll's wins (the workload
	// is written as reroll's says).
	ReasonConflictingAnnotations = "ConflictingAnnotations"
	// ReasonMissingReference: a non-optional ConfigMap or Secret is missing.
	ReasonMissingReference = "MissingReference"
	// ReasonMissingKey: a non-optional reference names a key that is missing.
	ReasonMissingKey = "MissingKey"
	// ReasonTooManyReferences: the workload consumes more than MaxReferences
	// objects and is left alone.
	ReasonTooManyReferences = "TooManyReferences"
	// ReasonInvalidTemplate: a custom workload has no usable pod template at
	// its kind's template path.
	ReasonInvalidTemplate = "InvalidTemplate"
	// ReasonPatchRejected: the API server rejected reroll's patch as invalid;
	// retrying the same patch cannot help.
	ReasonPatchRejected = "PatchRejected"
	// ReasonRecreateFailed: re-creating a Job failed (quota, admission);
	// reroll keeps the Job in a Secret in its namespace and retries.
	ReasonRecreateFailed = "RecreateFailed"
	// ReasonUnmappedPod (on a SecretProviderClassPodStatus): reroll cannot
	// map its pod to a workload it watches, so its rotations roll nothing.
	ReasonUnmappedPod = "UnmappedPod"
)
