package controller

import (
	"fmt"
	"testing"

	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// fanoutSync is what one sync of a fan-out hands gatherPolicyInput: the
// workload, its planned roll and the digests the plan read.
type fanoutSync struct {
	key     workloadKey
	w       workload
	p       plan.Plan
	current map[plan.ConfigRef]map[string]string
}

// newFanout seeds n adopted Deployments with complete rollouts, all
// consuming ConfigMap "cfg" (with cfgAnnotations), changes cfg, and returns
// the fixture and each Deployment's planned roll, as the n syncs of the
// fan-out would gather them.
func newFanout(tb testing.TB, n int, cfgAnnotations map[string]string) (*fixture, []fanoutSync) {
	cm := configMap("cfg", map[string]string{"a": "1"})
	cm.Annotations = cfgAnnotations
	f := newFixture(tb, cm)
	f.start()
	a, _ := f.c.adapterFor("Deployment")
	for i := range n {
		d := f.adopted(deployment(fmt.Sprintf("d-%04d", i), auto(), envFromConfigMap("cfg")))
		setComplete(d)
		cached, _ := TransformForCache(d)
		if err := f.informerFor(d).GetIndexer().Add(cached); err != nil {
			tb.Fatal(err)
		}
	}
	changed := cm.DeepCopy()
	changed.Data["a"], changed.ResourceVersion = "2", "2"
	cached, _ := TransformForCache(changed)
	if err := f.informerFor(changed).GetIndexer().Update(cached); err != nil {
		tb.Fatal(err)
	}
	syncs := make([]fanoutSync, n)
	for i := range n {
		key := workloadKey{groupKind: "Deployment", name: cache.ObjectName{Namespace: testNamespace, Name: fmt.Sprintf("d-%04d", i)}}
		w, err := getWorkload(a, key.name)
		if err != nil {
			tb.Fatal(err)
		}
		current := map[plan.ConfigRef]map[string]string{}
		p := f.c.planSync(f.c.planInput(key, w, current), testNamespace, nil)
		if p.Decision.Action != plan.ActionRoll {
			tb.Fatalf("%s plans %v, want a roll", key, p.Decision.Action)
		}
		syncs[i] = fanoutSync{key: key, w: w, p: p, current: current}
	}
	return f, syncs
}

// BenchmarkGatherFanout gathers the policy input of one sync of a fan-out
// of one ConfigMap change to 1,000 Deployments, cycling through them as the
// workers do: each op is one workload's sync, so a fan-out costs 1,000 ops.
// Before the consumer facts were memoised every op read all 1,000
// consumers (a fan-out was quadratic); see docs/benchmarks.md.
func BenchmarkGatherFanout(b *testing.B) {
	for _, waves := range []string{"none", "1,10%,100%"} {
		b.Run("waves="+waves, func(b *testing.B) {
			var annotations map[string]string
			if waves != "none" {
				annotations = map[string]string{plan.AnnotationWaves: waves}
			}
			f, syncs := newFanout(b, 1000, annotations)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s := syncs[i%len(syncs)]
				in, _ := f.c.gatherPolicyInput(s.key, s.w, s.p, s.current)
				if len(in.Changed) != 1 || len(in.Changed[0].Consumers) != len(syncs) {
					b.Fatalf("gathered %d changes, want 1 with %d consumers", len(in.Changed), len(syncs))
				}
			}
		})
	}
}

// TestFanoutRollsInWaves checks the fixture of BenchmarkGatherFanout: the
// gathered input holds the first Deployment, in wave order, and the rest
// behind it.
func TestFanoutRollsInWaves(t *testing.T) {
	f, syncs := newFanout(t, 20, map[string]string{plan.AnnotationWaves: "1,10%,100%"})
	for i, s := range []fanoutSync{syncs[0], syncs[1], syncs[19]} {
		in, _ := f.c.gatherPolicyInput(s.key, s.w, s.p, s.current)
		h := plan.Judge(in, plan.Rules())
		if want := i > 0; (h.Reason == plan.HoldWave) != want {
			t.Errorf("%s: hold %q, want a wave hold: %v", s.key, h.Reason, want)
		}
	}
}
