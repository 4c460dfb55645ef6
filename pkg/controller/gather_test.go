package controller

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

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

// TestGatherChangeMatchesFreshRead checks that the memo of consumer facts
// changes nothing the rules see: after each update of a consumer, as the
// informer delivers it, every sync's gathered input equals one read with
// an empty memo, and the rules judge it the same.
func TestGatherChangeMatchesFreshRead(t *testing.T) {
	f, syncs := newFanout(t, 12, map[string]string{plan.AnnotationWaves: "1,10%,100%"})
	change := plan.ChangedObject{}
	if in, _ := f.c.gatherPolicyInput(syncs[0].key, syncs[0].w, syncs[0].p, syncs[0].current); len(in.Changed) == 1 {
		change = in.Changed[0]
	}
	rv := 100
	update := func(i int, mutate func(*appsv1.Deployment)) {
		d := f.adopted(deployment(fmt.Sprintf("d-%04d", i), auto(), envFromConfigMap("cfg")))
		setComplete(d)
		mutate(d)
		rv++
		d.ResourceVersion = fmt.Sprint(rv)
		cached, _ := TransformForCache(d)
		if err := f.informerFor(d).GetIndexer().Update(cached); err != nil {
			t.Fatal(err)
		}
	}
	rolledFor := func(d *appsv1.Deployment) {
		d.Annotations[plan.AnnotationRollout] = plan.RolloutRecord{Started: f.opts.Clock.Now(), FromComplete: true, Changes: []plan.ChangeID{change.Change}}.String()
		d.Annotations[plan.AnnotationConsumed] = f.recordedState(d)
	}
	steps := []struct {
		name   string
		i      int
		mutate func(*appsv1.Deployment)
	}{
		{"the first wave rolls", 0, func(d *appsv1.Deployment) { rolledFor(d); setProgressing(d) }},
		{"and completes", 0, rolledFor},
		{"a later consumer goes first", 7, func(d *appsv1.Deployment) { d.Annotations[plan.AnnotationWavePriority] = "0"; rolledFor(d) }},
		{"its rollout fails", 7, func(d *appsv1.Deployment) { rolledFor(d); setFailed(d) }},
		{"a malformed priority", 3, func(d *appsv1.Deployment) { d.Annotations[plan.AnnotationWavePriority] = "soon" }},
		{"opted out", 5, func(d *appsv1.Deployment) { delete(d.Annotations, plan.AnnotationAuto) }},
		{"it recovers", 7, rolledFor},
	}
	for _, step := range steps {
		update(step.i, step.mutate)
		for _, s := range syncs {
			w, err := getWorkload(must(f.c.adapterFor("Deployment")), s.key.name)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := f.c.gatherPolicyInput(s.key, w, s.p, s.current)
			memo := f.c.consumerFacts
			f.c.consumerFacts = newConsumerFactsMemo()
			want, _ := f.c.gatherPolicyInput(s.key, w, s.p, s.current)
			f.c.consumerFacts = memo
			// The consumers index is a set: its order was never defined.
			for _, in := range []plan.PolicyInput{got, want} {
				slices.SortFunc(in.Changed[0].Consumers, func(a, b plan.ConsumerFacts) int { return strings.Compare(a.ID.String(), b.ID.String()) })
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: %s gathered\n%+v\nwant, read afresh,\n%+v", step.name, s.key, got, want)
			}
			if hg, hw := plan.Judge(got, plan.Rules()), plan.Judge(want, plan.Rules()); hg != hw {
				t.Errorf("%s: %s judged %+v, afresh %+v", step.name, s.key, hg, hw)
			}
		}
	}
}

// must returns v, dropping ok: for lookups a test knows succeed.
func must[V any](v V, _ bool) V { return v }
