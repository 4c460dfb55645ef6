package controller

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reroll/reroll/pkg/plan"
)

// verdict is what reroll decides for one workload at one moment: the plan,
// and for a roll, whether the rollout-safety rules hold it.
type verdict struct {
	plan plan.Plan
	// current holds the digests of every object the plan read.
	current map[plan.ConfigRef]map[string]string
	// policy are the facts the rules judged a planned roll on, hold the
	// first hold they found (zero: it rolls), and record the rollout
	// record the roll writes.
	policy plan.PolicyInput
	hold   plan.Hold
	record plan.RolloutRecord
}

// decision are the inputs of one decision beyond the cached workload.
type decision struct {
	key workloadKey
	w   workload
	// before holds, for a workload not adopted when its consumed objects
	// changed, those objects as they were before (see changes.go).
	before map[plan.ConfigRef]metav1.Object
	// recorded, when set, stands in for the workload's consumed annotation
	// (what --dry-run would have written).
	recorded *string
	now      time.Time
	mem      rollMemory
}

// decide decides for one workload as a sync does, from the caches alone:
// its plan (against the baselines before, if any), and for a roll the
// rules' judgement on the facts gathered for it. The controller's sync and
// the plugin's Inspector both decide with it; the sync then takes the
// roll's in-flight place and pacing slot (rollSlots.claim), which the rules
// judged a moment ago, and writes.
func (g *gatherer) decide(d decision) verdict {
	v := verdict{current: map[plan.ConfigRef]map[string]string{}}
	in := g.view.planInput(d.w, v.current)
	if d.recorded != nil {
		in.Recorded, in.HasRecorded = *d.recorded, true
	}
	v.plan = g.view.planSync(in, d.key.name.Namespace, d.before)
	if v.plan.Blocked || v.plan.Decision.Action != plan.ActionRoll {
		return v
	}
	v.policy, v.record = g.gather(d.key, d.w, v.plan, v.current, d.now, d.mem)
	v.hold = plan.Judge(v.policy, plan.Rules())
	switch v.hold.Reason {
	case plan.HoldPaused, plan.HoldWindow, plan.HoldHalted, plan.HoldWave:
		for _, o := range v.policy.Changed {
			_, digest, _ := strings.Cut(string(o.Change), ":")
			v.hold.Message += fmt.Sprintf("; to let this change through, set %s=%s on %s", plan.AnnotationRelease, digest, o.Ref)
		}
	}
	return v
}
