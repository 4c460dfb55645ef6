package controller

import (
	"time"

	"github.com/reroll/reroll/pkg/plan"
)

// rolloutJudge judges rollouts with their bake (plan.JudgeRollout): from
// the cached status, reroll's rollout record, what it remembers of the
// rollout and, while the bake lasts, the new revision's pods. The sync, the
// handlers and the Inspector all judge with one.
type rolloutJudge struct {
	decisions Decisions
	// memory remembers, per workload, what reroll saw of its rollout; nil
	// for the Inspector, which saw nothing.
	memory *keyedMemory[bakeMemo]
	// pods reads the new revision's pods; nil reads none.
	pods podSource
}

// bakeMemo is what reroll saw of the rollout it started at started: when
// it first saw it complete, when it last saw it not fully available after
// that, and whether its bake is over (its pods are no longer watched).
type bakeMemo struct {
	started, firstComplete, lastDip time.Time
	baked                           bool
}

// rolloutStart returns when reroll rolled w, from its rollout record, or
// zero.
func rolloutStart(w workload) time.Time {
	rec, err := plan.ParseRolloutRecord(w.meta.GetAnnotations()[plan.AnnotationRollout])
	if err != nil {
		return time.Time{}
	}
	return rec.Started
}

// rolled is what the judge reads of a workload: its namespace, status and
// pod selector, and when reroll rolled it (zero: it did not).
type rolled struct {
	namespace, selector string
	status              plan.RolloutStatus
	started             time.Time
}

// rolledOf returns what the judge reads of w.
func rolledOf(w workload) rolled {
	return rolled{namespace: w.meta.GetNamespace(), selector: w.selector, status: w.status, started: rolloutStart(w)}
}

// judge judges the rollout of workload key, r, at now. bake is its bake
// time (see bakeTime).
func (j *rolloutJudge) judge(key workloadKey, r rolled, bake time.Duration, now time.Time) plan.RolloutJudgement {
	f := plan.RolloutFacts{Status: r.status, Started: r.started, Timeout: j.decisions.RolloutTimeout, Bake: bake}
	if f.Started.IsZero() || bake <= 0 {
		return plan.JudgeRollout(f, now)
	}
	var m bakeMemo
	if j.memory != nil {
		m, _ = j.memory.get(key)
		if !m.started.Equal(f.Started) {
			m = bakeMemo{started: f.Started}
		}
		f.FirstComplete, f.LastDip = m.firstComplete, m.lastDip
	}
	if m.baked {
		return plan.JudgeRollout(f, now)
	}
	// The pods are watched only while the bake can last: until the rollout
	// times out and bakes.
	if j.pods != nil && now.Before(f.Started.Add(f.Timeout+bake)) {
		f.Pods = j.pods.health(key, r.namespace, r.selector, f.Started)
	}
	judged := plan.JudgeRollout(f, now)
	if judged.State == plan.RolloutComplete || !now.Before(f.Started.Add(f.Timeout+bake)) {
		if j.pods != nil {
			j.pods.release(key)
		}
		if j.memory != nil {
			m.baked = true
			j.memory.set(key, m)
		}
	}
	return judged
}

// observe records what reroll sees of r's rollout now (see bakeMemo): the
// handlers call it on every status update.
func (j *rolloutJudge) observe(key workloadKey, r rolled, now time.Time) {
	started := r.started
	if j.memory == nil || started.IsZero() {
		return
	}
	j.memory.update(key, func(m bakeMemo, _ bool) (bakeMemo, bool) {
		if !m.started.Equal(started) {
			m = bakeMemo{started: started}
		}
		done := r.status.Observed && r.status.Done
		switch {
		case done && m.firstComplete.IsZero():
			m.firstComplete = now
		case !done && !m.firstComplete.IsZero() && !m.baked:
			m.lastDip = now
		}
		return m, true
	})
}

// bakeTime returns the bake of w's roll for a change of objects with
// objectAnnotations (the longest they set), or --bake-time; an annotation
// that cannot be read is an error, and the default applies.
func (j *rolloutJudge) bakeTime(w workload, objectAnnotations ...map[string]string) (time.Duration, error) {
	if _, ok := w.meta.GetAnnotations()[plan.AnnotationBakeTime]; ok || len(objectAnnotations) == 0 {
		return plan.BakeTimeOf(w.meta.GetAnnotations(), nil, j.decisions.BakeTime)
	}
	var longest time.Duration
	var set bool
	for _, a := range objectAnnotations {
		if _, ok := a[plan.AnnotationBakeTime]; !ok {
			continue
		}
		d, err := plan.BakeTimeOf(nil, a, j.decisions.BakeTime)
		if err != nil {
			return j.decisions.BakeTime, err
		}
		longest, set = max(longest, d), true
	}
	if !set {
		return j.decisions.BakeTime, nil
	}
	return longest, nil
}
