package plan

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
)

// The progress of workloads' rollouts, read from their cached status with
// the rules `kubectl rollout status` uses, and the record reroll keeps on a
// workload of the rollout it started. The rollout-safety policies (gate.go)
// wait on both.

// RolloutStatus is what the cache keeps of a workload's status: the few
// facts its rollout state is derived from.
type RolloutStatus struct {
	// observed: the workload's controller has seen its current spec
	// (status.observedGeneration >= metadata.generation).
	Observed bool
	// done: the rollout of the observed spec is complete, by the kind's rule.
	Done bool
	// deadlineExceeded: a Deployment's Progressing condition has reason
	// ProgressDeadlineExceeded.
	DeadlineExceeded bool
	// timed: the kind has no failure signal of its own, so a rollout fails
	// when --rollout-timeout passes (StatefulSets and DaemonSets).
	Timed bool
	// CompletedAt is when the workload's controller last marked a rollout
	// complete, and AvailableSince when the workload last became
	// available, as its conditions record them; zero for kinds whose
	// status has no such times. The bake reads them (see JudgeRollout).
	CompletedAt, AvailableSince time.Time
}

// RolloutState is where a workload's current rollout stands.
type RolloutState int

const (
	// RolloutComplete: the current spec is fully rolled out.
	RolloutComplete RolloutState = iota
	// RolloutProgressing: the rollout goes on.
	RolloutProgressing
	// RolloutFailed: the rollout cannot complete (deadline or timeout), or
	// its new revision failed inside its bake (JudgeRollout).
	RolloutFailed
	// RolloutBaking: the rollout completed, and the workload has not yet
	// been fully available for its bake time (JudgeRollout).
	RolloutBaking
)

// String names the state for logs and messages.
func (s RolloutState) String() string {
	return [...]string{"complete", "progressing", "failed", "baking"}[s]
}

// progressDeadlineExceeded is the reason of a Deployment's Progressing
// condition once its progressDeadlineSeconds passed without progress.
const progressDeadlineExceeded = "ProgressDeadlineExceeded"

// newReplicaSetAvailable is the reason of a Deployment's Progressing
// condition once its rollout completed.
const newReplicaSetAvailable = "NewReplicaSetAvailable"

// DeploymentStatus is the RolloutStatus of a Deployment: complete when the
// controller observed the spec and updated, available and total replicas
// all equal spec.replicas; failed on ProgressDeadlineExceeded.
func DeploymentStatus(d *appsv1.Deployment) RolloutStatus {
	replicas := ptr.Deref(d.Spec.Replicas, 1)
	s := RolloutStatus{
		Observed: d.Status.ObservedGeneration >= d.Generation,
		Done: d.Status.UpdatedReplicas == replicas && d.Status.AvailableReplicas == replicas &&
			d.Status.Replicas == replicas,
	}
	for _, c := range d.Status.Conditions {
		switch {
		case c.Type == appsv1.DeploymentProgressing && c.Reason == progressDeadlineExceeded:
			s.DeadlineExceeded = true
		case c.Type == appsv1.DeploymentProgressing && c.Reason == newReplicaSetAvailable:
			// Set when the rollout completes; the reason, not the status,
			// changes then, so the update time is the completion's.
			s.CompletedAt = c.LastUpdateTime.Time
		case c.Type == appsv1.DeploymentAvailable && c.Status == "True":
			s.AvailableSince = c.LastTransitionTime.Time
		}
	}
	return s
}

// StatefulSetStatus is the RolloutStatus of a StatefulSet: with the
// RollingUpdate strategy, complete when the controller observed the spec,
// the update revision is current and every replica is ready; with OnDelete,
// complete at once (pods change only when someone deletes them).
func StatefulSetStatus(s *appsv1.StatefulSet) RolloutStatus {
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return RolloutStatus{Observed: true, Done: true}
	}
	return RolloutStatus{
		Observed: s.Status.ObservedGeneration >= s.Generation,
		Done:     s.Status.UpdateRevision == s.Status.CurrentRevision && s.Status.ReadyReplicas == ptr.Deref(s.Spec.Replicas, 1),
		Timed:    true,
	}
}

// DaemonSetStatus is the RolloutStatus of a DaemonSet: complete when the
// controller observed the spec and every node that should run a pod runs an
// updated, available one.
func DaemonSetStatus(d *appsv1.DaemonSet) RolloutStatus {
	return RolloutStatus{
		Observed: d.Status.ObservedGeneration >= d.Generation,
		Done: d.Status.UpdatedNumberScheduled == d.Status.DesiredNumberScheduled &&
			d.Status.NumberAvailable == d.Status.DesiredNumberScheduled,
		Timed: true,
	}
}

// CalculateRolloutState returns where a rollout stands: status is the
// cached status, started when reroll started the rollout (zero if unknown),
// and timeout the --rollout-timeout of kinds without a failure signal.
func CalculateRolloutState(status RolloutStatus, started, now time.Time, timeout time.Duration) RolloutState {
	switch {
	case status.Observed && status.Done:
		return RolloutComplete
	case status.Observed && status.DeadlineExceeded:
		return RolloutFailed
	case status.Timed && !started.IsZero() && timeout > 0 && now.Sub(started) > timeout:
		return RolloutFailed
	}
	return RolloutProgressing
}

// CanFail reports whether CalculateRolloutState can find a rollout with
// status failed, at some time, whenever it started: it has failed by its
// own signal, or its kind fails by --rollout-timeout and it has not
// completed. It depends on the status alone, so a cache index can keep the
// workloads it holds for: those the halt of a change must look at.
func CanFail(status RolloutStatus) bool {
	if status.Observed && status.Done {
		return false
	}
	return (status.Observed && status.DeadlineExceeded) || status.Timed
}

// ChangeID identifies one change of a ConfigMap or Secret: the object and a
// keyed digest of its whole content ("ConfigMap/cfg:1a2b...").
type ChangeID string

// CalculateChangeID returns the ChangeID of ref with content digests. It is
// keyed like every value reroll writes, so it says nothing about Secret
// content to someone who can read workloads.
func CalculateChangeID(key HashKey, ref ConfigRef, digests map[string]string) ChangeID {
	fields := [][]byte{[]byte("reroll.dev/change"), []byte(ref.String())}
	for _, k := range slices.Sorted(maps.Keys(digests)) {
		fields = append(fields, []byte(k), []byte(digests[k]))
	}
	return ChangeID(ref.String() + ":" + key.sum(8, fields...))
}

// RolloutRecord is what reroll writes on a workload (AnnotationRollout)
// with each roll: when it rolled, whether the workload's previous rollout
// had completed, and the changes it rolled for. The halt of a change is
// derived from the records and statuses of the change's consumers, so it
// survives restarts.
type RolloutRecord struct {
	// started is when reroll rolled the workload.
	Started time.Time
	// fromComplete: the previous rollout had completed, so a failure of
	// this one is this change's doing.
	FromComplete bool
	// changes are the changes the roll was for, sorted.
	Changes []ChangeID
}

// String formats the record as "v1;at=<unix>;from=complete|incomplete;
// changes=<id>,<id>".
func (r RolloutRecord) String() string {
	from := "incomplete"
	if r.FromComplete {
		from = "complete"
	}
	ids := make([]string, len(r.Changes))
	for i, c := range r.Changes {
		ids[i] = string(c)
	}
	return fmt.Sprintf("v1;at=%d;from=%s;changes=%s", r.Started.Unix(), from, strings.Join(ids, ","))
}

// ParseRolloutRecord parses AnnotationRollout. An unreadable record is an
// error: the caller then treats the rollout as not started by reroll, which
// can halt nothing.
func ParseRolloutRecord(v string) (RolloutRecord, error) {
	parts := strings.Split(v, ";")
	if len(parts) != 4 || parts[0] != "v1" {
		return RolloutRecord{}, fmt.Errorf("unknown format %q", v)
	}
	at, ok1 := strings.CutPrefix(parts[1], "at=")
	from, ok2 := strings.CutPrefix(parts[2], "from=")
	changes, ok3 := strings.CutPrefix(parts[3], "changes=")
	secs, err := strconv.ParseInt(at, 10, 64)
	if !ok1 || !ok2 || !ok3 || err != nil || (from != "complete" && from != "incomplete") {
		return RolloutRecord{}, fmt.Errorf("malformed %q", v)
	}
	r := RolloutRecord{Started: time.Unix(secs, 0), FromComplete: from == "complete"}
	if changes != "" {
		for _, c := range strings.Split(changes, ",") {
			r.Changes = append(r.Changes, ChangeID(c))
		}
	}
	return r, nil
}

// RolledFor reports whether the record's roll was for change c.
func (r RolloutRecord) RolledFor(c ChangeID) bool {
	return slices.Contains(r.Changes, c)
}

// RefOfChange returns the object of a change ("ConfigMap/cfg:1a2b").
func RefOfChange(c ChangeID) ConfigRef {
	object, _, _ := strings.Cut(string(c), ":")
	typ, name, _ := strings.Cut(object, "/")
	return ConfigRef{Type: ConfigType(typ), Name: name}
}
