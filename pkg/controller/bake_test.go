package controller

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/reroll/reroll/pkg/plan"
)

// fakePods is a podSource whose pods say what the test sets.
type fakePods struct {
	byName  map[string]*plan.PodHealth
	watched map[string]bool
}

// health implements podSource.
func (f *fakePods) health(key workloadKey, _, _ string, _ time.Time) *plan.PodHealth {
	f.watched[key.name.Name] = true
	return f.byName[key.name.Name]
}

// release implements podSource.
func (f *fakePods) release(key workloadKey) { delete(f.watched, key.name.Name) }

// newBakeFixture is a policy fixture of Deployments a and b in waves
// 1,100% with a bake of a minute, whose pods the test sets.
func newBakeFixture(t *testing.T) (*policyFixture, *fakePods) {
	p := newPolicyFixture(t, map[string]string{plan.AnnotationWaves: "1,100%"}, []string{"a", "b"}, nil, func(o *Options) {
		o.BakeTime = time.Minute
	})
	pods := &fakePods{byName: map[string]*plan.PodHealth{}, watched: map[string]bool{}}
	p.c.gatherer.judge.pods = pods
	return p, pods
}

// A wave counts as done only once its workloads' rollouts completed and
// they stayed fully available for the bake: the next wave waits, its hold
// names the bake, and it rolls when the bake ends, without another event.
func TestBakeHoldsTheNextWave(t *testing.T) {
	p, pods := newBakeFixture(t)
	p.change("2", map[string]string{plan.AnnotationWaves: "1,100%"})
	if rolled := p.syncAll(); strings.Join(rolled, ",") != "a" {
		t.Fatalf("rolled %q, want the first wave, a", rolled)
	}
	if e := p.eventsOf("RolloutHeld"); len(e) != 1 || !strings.Contains(e[0], "to roll, complete and bake") {
		t.Errorf("hold Events %q, want one that names the bake", e)
	}
	// a's rollout completes: it bakes, and its pods are watched.
	p.rolled("a", setComplete)
	if rolled := p.syncAll(); len(rolled) != 0 {
		t.Fatalf("rolled %q while a bakes", rolled)
	}
	if !pods.watched["a"] {
		t.Error("a's pods are not watched while it bakes")
	}
	if got := p.c.memory.slots.inflight.count(); got != 1 {
		t.Errorf("%d rollouts in flight, want a, which bakes", got)
	}
	p.clock.Step(59 * time.Second)
	if rolled := p.syncAll(); len(rolled) != 0 {
		t.Fatalf("rolled %q a second before the bake ends", rolled)
	}
	// The bake ends: b's hold comes due by itself.
	p.clock.Step(time.Second)
	waitUntil(t, "b's hold to come due at the bake's end", func() bool { return p.c.queue.Len() > 0 })
	if rolled := p.syncAll(); strings.Join(rolled, ",") != "b" {
		t.Fatalf("rolled %q when a's bake ended, want b", rolled)
	}
	if pods.watched["a"] {
		t.Error("a's pods are still watched after its bake")
	}
}

// A restart of a new pod inside the bake halts the change: the halt names
// the workload, its pods and the restarts, with one Event on the failed
// workload while it flaps; a whole bake without a restart ends it.
func TestBakeFailureHalts(t *testing.T) {
	p, pods := newBakeFixture(t)
	p.change("2", map[string]string{plan.AnnotationWaves: "1,100%"})
	p.syncAll()
	p.rolled("a", setComplete)
	started := p.clock.Now()
	p.clock.Step(5 * time.Second)
	pods.byName["a"] = &plan.PodHealth{Pods: 1, Restarts: 2, RestartedPods: []string{"a-7d9f-x2"}, Since: started, LastRestart: p.clock.Now(),
		CrashLooping: []string{"a-7d9f-x2"}}
	p.events()
	p.sync(p.ctx, "a") // the pod's event syncs a, which judges it again
	if rolled := p.syncAll("b"); len(rolled) != 0 {
		t.Fatalf("rolled %q after a's pods crashed", rolled)
	}
	events := p.events()
	halt := func(part string) bool {
		for _, e := range events {
			if strings.Contains(e, "RolloutHalted") && strings.Contains(e, part) {
				return true
			}
		}
		return false
	}
	if !halt("restarted 2 times in 5s (pods a-7d9f-x2); CrashLoopBackOff (pods a-7d9f-x2)") || !halt("this rollout, which reroll started") {
		t.Errorf("events %q, want the halt of b and the Event on a, naming the pods and the restarts", events)
	}
	// It flaps: still halted, no new Event.
	for range 3 {
		p.clock.Step(10 * time.Second)
		pods.byName["a"].CrashLooping = nil
		p.setStatus("a", func(d *appsv1.Deployment) { setProgressing(d) })
		p.setStatus("a", setComplete)
		pods.byName["a"].CrashLooping = []string{"a-7d9f-x2"}
		pods.byName["a"].Restarts++
		pods.byName["a"].LastRestart = p.clock.Now()
		if rolled := p.syncAll(); len(rolled) != 0 {
			t.Fatalf("rolled %q while a flaps", rolled)
		}
	}
	if e := p.eventsOf("RolloutHalted"); len(e) != 0 {
		t.Errorf("Events while a flaps: %q", e)
	}
	// It recovers, and stays healthy for a whole bake.
	pods.byName["a"].CrashLooping = nil
	p.clock.Step(30 * time.Second)
	if rolled := p.syncAll(); len(rolled) != 0 {
		t.Fatalf("rolled %q half a bake after the last restart", rolled)
	}
	p.clock.Step(31 * time.Second)
	if rolled := p.syncAll(); strings.Join(rolled, ",") != "b" {
		t.Fatalf("rolled %q a whole bake after the last restart, want b", rolled)
	}
}
