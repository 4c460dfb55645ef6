package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The bake: a workload reroll rolled counts as complete only once its
// rollout has completed and it has stayed fully available for the bake
// time since. A container that crashes a moment after it starts is Ready
// for that moment, and a Deployment without a readiness probe then reports
// its rollout complete while every new pod crash-loops; without the bake
// the next wave would roll at once.
//
// What is judged, and where it comes from, so that a restart of reroll
// loses none of it:
//   - the workload's status (RolloutStatus), with the times its controller
//     recorded in its conditions: when the rollout last completed
//     (CompletedAt) and when the workload last became available
//     (AvailableSince);
//   - reroll's rollout record on the workload: when it rolled it;
//   - the pods of the new revision (PodHealth), while reroll watches them:
//     their restarts, CrashLoopBackOff and readiness;
//   - and, in reroll's memory, when it first saw the rollout complete and
//     last saw it not fully available after that, which only adds to the
//     durable facts.

// AnnotationBakeTime sets the bake time of a workload, or of the rolls a
// change of a ConfigMap or Secret makes: a Go duration such as "2m"; "0s"
// turns the bake off. The workload's wins over the object's, which wins
// over --bake-time.
const AnnotationBakeTime = AnnotationPrefix + "bake-time"

// BakeTimeOf returns the bake time of a roll of a workload with
// workloadAnnotations for a change of an object with objectAnnotations,
// defaulting to def (--bake-time).
func BakeTimeOf(workloadAnnotations, objectAnnotations map[string]string, def time.Duration) (time.Duration, error) {
	for _, a := range []map[string]string{workloadAnnotations, objectAnnotations} {
		if v, ok := a[AnnotationBakeTime]; ok {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return def, fmt.Errorf("%s=%q is not a duration of zero or more, such as 2m", AnnotationBakeTime, v)
			}
			return d, nil
		}
	}
	return def, nil
}

// PodHealth is what the pods of a workload's new revision say of its
// health since reroll rolled it: the pods created since the roll, not
// terminating.
type PodHealth struct {
	// Pods counts them.
	Pods int
	// Restarts counts their containers' restarts, RestartedPods names the
	// pods that restarted, Since is when the first of them was created and
	// LastRestart when a container of theirs last terminated.
	Restarts      int
	RestartedPods []string
	Since         time.Time
	LastRestart   time.Time
	// CrashLooping names the pods with a container waiting in
	// CrashLoopBackOff.
	CrashLooping []string
	// Exits are their containers that stopped and have not started again
	// yet: the moment between a crash and the restart that counts it.
	Exits []ContainerExit
	// ReadySince is when the last of them became Ready, if all are; zero
	// while one is not.
	ReadySince time.Time
}

// ContainerExit is a container of a pod that stopped, as its status says.
type ContainerExit struct {
	Pod, Container string
	ExitCode       int32
	// Reason is the runtime's: Error, OOMKilled, Completed.
	Reason string
	At     time.Time
}

// String says which container stopped and how: "container web-1/app
// exited with code 1, Error".
func (e ContainerExit) String() string {
	s := fmt.Sprintf("container %s/%s exited with code %d", e.Pod, e.Container, e.ExitCode)
	if e.Reason != "" {
		s += ", " + e.Reason
	}
	return s
}

// RolloutFacts are what a rollout is judged on (JudgeRollout).
type RolloutFacts struct {
	Status RolloutStatus
	// Started is when reroll rolled the workload (its rollout record);
	// zero when it did not: such a rollout has no bake.
	Started time.Time
	// Timeout is --rollout-timeout, and Bake the bake time (zero: none).
	Timeout, Bake time.Duration
	// FirstComplete is when reroll first saw this rollout complete, and
	// LastDip when it last saw it not fully available after that: its
	// memory, zero after a restart.
	FirstComplete, LastDip time.Time
	// Pods are the new revision's pods, nil when they are not watched.
	Pods *PodHealth
}

// RolloutJudgement is where a rollout stands, with the bake.
type RolloutJudgement struct {
	State RolloutState
	// Until is when a baking rollout will count as complete, and when a
	// rollout that failed inside its bake can count as recovered if it
	// stays healthy that long.
	Until time.Time
	// Why says why it failed, or what it waits for.
	Why string
}

// JudgeRollout judges a rollout reroll started, with the bake, at now:
//   - failed when its own signal or the timeout says so
//     (CalculateRolloutState), or when, since the roll, a new pod's
//     container exited, restarted or crash-loops, or the workload stopped being
//     fully available after its rollout completed; it stays failed until it
//     has been healthy for a whole bake since the last sign of failure, so
//     that a workload that flaps never counts as recovered;
//   - progressing until its rollout completes;
//   - baking from then on, until it has been fully available for the bake
//     time since the latest of: the roll, the rollout's completion, the
//     workload's last becoming available, its pods' last becoming ready;
//   - complete after that.
//
// A rollout reroll did not start, or without a bake, is judged by
// CalculateRolloutState alone.
func JudgeRollout(f RolloutFacts, now time.Time) RolloutJudgement {
	base := CalculateRolloutState(f.Status, f.Started, now, f.Timeout)
	if f.Started.IsZero() || f.Bake <= 0 {
		return RolloutJudgement{State: base}
	}
	lastBad, why := failureSigns(f, now)
	switch {
	case base == RolloutFailed:
		return RolloutJudgement{State: RolloutFailed, Why: orDefault(strings.Join(why, "; "), "its rollout failed")}
	case !lastBad.IsZero():
		until := lastBad.Add(f.Bake)
		if f.Status.Observed && f.Status.Done && !now.Before(until) {
			return RolloutJudgement{State: RolloutComplete}
		}
		return RolloutJudgement{State: RolloutFailed, Until: until, Why: strings.Join(why, "; ")}
	case base == RolloutProgressing:
		return RolloutJudgement{State: RolloutProgressing}
	}
	start := latest(f.Started, f.Status.CompletedAt, f.Status.AvailableSince, f.FirstComplete)
	if f.Pods != nil {
		start = latest(start, f.Pods.ReadySince)
	}
	if until := start.Add(f.Bake); now.Before(until) {
		return RolloutJudgement{State: RolloutBaking, Until: until,
			Why: fmt.Sprintf("fully available for %v of its %v bake", now.Sub(start).Round(time.Second), f.Bake)}
	}
	return RolloutJudgement{State: RolloutComplete}
}

// failureSigns returns the latest sign, since the roll, that the new
// revision is unhealthy, and what the signs are; zero when there is none.
// A sign that lasts (a crash loop, being not fully available after the
// rollout completed) is dated now.
func failureSigns(f RolloutFacts, now time.Time) (time.Time, []string) {
	var last time.Time
	var why []string
	if p := f.Pods; p != nil {
		if p.Restarts > 0 && p.LastRestart.After(f.Started) {
			last = latest(last, p.LastRestart)
			why = append(why, fmt.Sprintf("restarted %d times in %v (pods %s)", p.Restarts,
				p.LastRestart.Sub(latest(p.Since, f.Started)).Round(time.Second), strings.Join(sorted(p.RestartedPods), ", ")))
		}
		if len(p.CrashLooping) > 0 {
			last = now
			why = append(why, "CrashLoopBackOff (pods "+strings.Join(sorted(p.CrashLooping), ", ")+")")
		}
		var exits []string
		for _, e := range p.Exits {
			if e.At.After(f.Started) {
				last = latest(last, e.At)
				exits = append(exits, e.String())
			}
		}
		why = append(why, sorted(exits)...)
	}
	// Not fully available after the rollout completed is a failure inside
	// the bake; after it, the pods and reroll's memory tell a workload that
	// still flaps from one that failed later for another reason.
	completedAt := latest(f.Status.CompletedAt, f.FirstComplete)
	if completedAt.After(f.Started) && !(f.Status.Observed && f.Status.Done) && now.Before(completedAt.Add(f.Bake)) {
		last = now
		why = append(why, "no longer fully available after its rollout completed")
	} else if f.LastDip.After(f.Started) {
		last = latest(last, f.LastDip)
		why = append(why, "was not fully available at "+f.LastDip.UTC().Format(time.RFC3339)+" after its rollout completed")
	}
	return last, why
}

// latest returns the latest of ts.
func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// sorted returns a sorted copy of names.
func sorted(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return out
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
