package controller

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// The progress of workloads' rollouts, read from their cached status with
// the rules `kubectl rollout status` uses, and the record reroll keeps on a
// workload of the rollout it started. The rollout-safety policies (gate.go)
// wait on both.

// rolloutStatus is what the cache keeps of a workload's status: the few
// facts its rollout state is derived from.
type rolloutStatus struct {
	// observed: the workload's controller has seen its current spec
	// (status.observedGeneration >= metadata.generation).
	observed bool
	// done: the rollout of the observed spec is complete, by the kind's rule.
	done bool
	// deadlineExceeded: a Deployment's Progressing condition has reason
	// ProgressDeadlineExceeded.
	deadlineExceeded bool
	// timed: the kind has no failure signal of its own, so a rollout fails
	// when --rollout-timeout passes (StatefulSets and DaemonSets).
	timed bool
}

// rolloutState is where a workload's current rollout stands.
type rolloutState int

const (
	// rolloutComplete: the current spec is fully rolled out.
	rolloutComplete rolloutState = iota
	// rolloutProgressing: the rollout goes on.
	rolloutProgressing
	// rolloutFailed: the rollout cannot complete (deadline or timeout).
	rolloutFailed
)

// String names the state for logs and messages.
func (s rolloutState) String() string {
	return [...]string{"complete", "progressing", "failed"}[s]
}

// progressDeadlineExceeded is the reason of a Deployment's Progressing
// condition once its progressDeadlineSeconds passed without progress.
const progressDeadlineExceeded = "ProgressDeadlineExceeded"

// deploymentStatus is the rolloutStatus of a Deployment: complete when the
// controller observed the spec and updated, available and total replicas
// all equal spec.replicas; failed on ProgressDeadlineExceeded.
func deploymentStatus(d *appsv1.Deployment) rolloutStatus {
	replicas := ptr.Deref(d.Spec.Replicas, 1)
	s := rolloutStatus{
		observed: d.Status.ObservedGeneration >= d.Generation,
		done: d.Status.UpdatedReplicas == replicas && d.Status.AvailableReplicas == replicas &&
			d.Status.Replicas == replicas,
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == progressDeadlineExceeded {
			s.deadlineExceeded = true
		}
	}
	return s
}

// statefulSetStatus is the rolloutStatus of a StatefulSet: with the
// RollingUpdate strategy, complete when the controller observed the spec,
// the update revision is current and every replica is ready; with OnDelete,
// complete at once (pods change only when someone deletes them).
func statefulSetStatus(s *appsv1.StatefulSet) rolloutStatus {
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return rolloutStatus{observed: true, done: true}
	}
	return rolloutStatus{
		observed: s.Status.ObservedGeneration >= s.Generation,
		done:     s.Status.UpdateRevision == s.Status.CurrentRevision && s.Status.ReadyReplicas == ptr.Deref(s.Spec.Replicas, 1),
		timed:    true,
	}
}

// daemonSetStatus is the rolloutStatus of a DaemonSet: complete when the
// controller observed the spec and every node that should run a pod runs an
// updated, available one.
func daemonSetStatus(d *appsv1.DaemonSet) rolloutStatus {
	return rolloutStatus{
		observed: d.Status.ObservedGeneration >= d.Generation,
		done: d.Status.UpdatedNumberScheduled == d.Status.DesiredNumberScheduled &&
			d.Status.NumberAvailable == d.Status.DesiredNumberScheduled,
		timed: true,
	}
}

// customStatus is the rolloutStatus of a custom resource: complete once its
// status.observedGeneration reaches its generation (which includes reroll's
// patch), or at once when it has no status.observedGeneration, since reroll
// cannot know more of a kind it does not know.
func customStatus(u *unstructured.Unstructured) rolloutStatus {
	og, found, err := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if !found || err != nil {
		return rolloutStatus{observed: true, done: true}
	}
	return rolloutStatus{observed: og >= u.GetGeneration(), done: og >= u.GetGeneration()}
}

// calculateRolloutState returns where a rollout stands: status is the
// cached status, started when reroll started the rollout (zero if unknown),
// and timeout the --rollout-timeout of kinds without a failure signal.
func calculateRolloutState(status rolloutStatus, started, now time.Time, timeout time.Duration) rolloutState {
	switch {
	case status.observed && status.done:
		return rolloutComplete
	case status.observed && status.deadlineExceeded:
		return rolloutFailed
	case status.timed && !started.IsZero() && timeout > 0 && now.Sub(started) > timeout:
		return rolloutFailed
	}
	return rolloutProgressing
}

// changeID identifies one change of a ConfigMap or Secret: the object and a
// keyed digest of its whole content ("ConfigMap/cfg:1a2b...").
type changeID string

// calculateChangeID returns the changeID of ref with content digests. It is
// keyed like every value reroll writes, so it says nothing about Secret
// content to someone who can read workloads.
func calculateChangeID(key HashKey, ref configRef, digests map[string]string) changeID {
	fields := [][]byte{[]byte("reroll.dev/change"), []byte(ref.String())}
	for _, k := range slices.Sorted(maps.Keys(digests)) {
		fields = append(fields, []byte(k), []byte(digests[k]))
	}
	return changeID(ref.String() + ":" + key.sum(8, fields...))
}

// rolloutRecord is what reroll writes on a workload (AnnotationRollout)
// with each roll: when it rolled, whether the workload's previous rollout
// had completed, and the changes it rolled for. The halt of a change is
// derived from the records and statuses of the change's consumers, so it
// survives restarts.
type rolloutRecord struct {
	// started is when reroll rolled the workload.
	started time.Time
	// fromComplete: the previous rollout had completed, so a failure of
	// this one is this change's doing.
	fromComplete bool
	// changes are the changes the roll was for, sorted.
	changes []changeID
}

// String formats the record as "v1;at=<unix>;from=complete|incomplete;
// changes=<id>,<id>".
func (r rolloutRecord) String() string {
	from := "incomplete"
	if r.fromComplete {
		from = "complete"
	}
	ids := make([]string, len(r.changes))
	for i, c := range r.changes {
		ids[i] = string(c)
	}
	return fmt.Sprintf("v1;at=%d;from=%s;changes=%s", r.started.Unix(), from, strings.Join(ids, ","))
}

// parseRolloutRecord parses AnnotationRollout. An unreadable record is an
// error: the caller then treats the rollout as not started by reroll, which
// can halt nothing.
func parseRolloutRecord(v string) (rolloutRecord, error) {
	parts := strings.Split(v, ";")
	if len(parts) != 4 || parts[0] != "v1" {
		return rolloutRecord{}, fmt.Errorf("unknown format %q", v)
	}
	at, ok1 := strings.CutPrefix(parts[1], "at=")
	from, ok2 := strings.CutPrefix(parts[2], "from=")
	changes, ok3 := strings.CutPrefix(parts[3], "changes=")
	secs, err := strconv.ParseInt(at, 10, 64)
	if !ok1 || !ok2 || !ok3 || err != nil || (from != "complete" && from != "incomplete") {
		return rolloutRecord{}, fmt.Errorf("malformed %q", v)
	}
	r := rolloutRecord{started: time.Unix(secs, 0), fromComplete: from == "complete"}
	if changes != "" {
		for _, c := range strings.Split(changes, ",") {
			r.changes = append(r.changes, changeID(c))
		}
	}
	return r, nil
}

// rolledFor reports whether the record's roll was for change c.
func (r rolloutRecord) rolledFor(c changeID) bool {
	return slices.Contains(r.changes, c)
}
