package controller

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// fanoutSync is what one sync of a fan-out hands the gatherer: the
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
	a, _ := f.c.view.kinds.get("Deployment")
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
		p := f.c.view.planSync(f.c.view.planInput(w, current), testNamespace, nil)
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
				in, _ := f.c.gatherer.gather(s.key, s.w, s.p, s.current, f.c.opts.Clock.Now(), f.c.memory)
				if len(in.Changed) != 1 {
					b.Fatalf("gathered %d changes, want 1", len(in.Changed))
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
		in, _ := f.c.gatherer.gather(s.key, s.w, s.p, s.current, f.c.opts.Clock.Now(), f.c.memory)
		h := plan.Judge(in, plan.Rules())
		if want := i > 0; (h.Reason == plan.HoldWave) != want {
			t.Errorf("%s: hold %q, want a wave hold: %v", s.key, h.Reason, want)
		}
	}
}

// TestGatherChangeMatchesFreshRead checks that neither the memo of
// consumer facts nor reading only the consumers whose rollout can fail
// changes what the rules decide: after each update of a consumer, as the
// informer delivers it, every sync's gathered input equals one read with
// an empty memo, and the rules judge it as they judge every consumer's
// facts read afresh, the way every sync read them before.
func TestGatherChangeMatchesFreshRead(t *testing.T) {
	for _, waves := range []string{"none", "1,10%,100%"} {
		t.Run("waves="+waves, func(t *testing.T) {
			var annotations map[string]string
			if waves != "none" {
				annotations = map[string]string{plan.AnnotationWaves: waves}
			}
			f, syncs := newFanout(t, 12, annotations)
			for _, step := range consumerUpdates(f, syncs[0]) {
				step.update()
				for _, s := range syncs {
					checkGather(t, f, s, step.name, waves != "none")
				}
			}
		})
	}
}

// consumerUpdate is one update of a consumer in a fan-out, as the informer
// delivers it.
type consumerUpdate struct {
	name   string
	update func()
}

// consumerUpdates returns the updates TestGatherChangeMatchesFreshRead
// delivers, in order: rolls, completion, a failure and its recovery, wave
// priorities, and an opt-out.
func consumerUpdates(f *fixture, first fanoutSync) []consumerUpdate {
	in, _ := f.c.gatherer.gather(first.key, first.w, first.p, first.current, f.c.opts.Clock.Now(), f.c.memory)
	change := in.Changed[0].Change
	rv := 100
	update := func(i int, mutate func(*appsv1.Deployment)) func() {
		return func() {
			d := f.adopted(deployment(fmt.Sprintf("d-%04d", i), auto(), envFromConfigMap("cfg")))
			setComplete(d)
			mutate(d)
			rv++
			d.ResourceVersion = fmt.Sprint(rv)
			cached, _ := TransformForCache(d)
			if err := f.informerFor(d).GetIndexer().Update(cached); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	rolledFor := func(d *appsv1.Deployment) {
		d.Annotations[plan.AnnotationRollout] = plan.RolloutRecord{Started: f.opts.Clock.Now(), FromComplete: true, Changes: []plan.ChangeID{change}}.String()
		d.Annotations[plan.AnnotationConsumed] = f.recordedState(d)
	}
	return []consumerUpdate{
		{"the first wave rolls", update(0, func(d *appsv1.Deployment) { rolledFor(d); setProgressing(d) })},
		{"and completes", update(0, rolledFor)},
		{"a later consumer goes first", update(7, func(d *appsv1.Deployment) { d.Annotations[plan.AnnotationWavePriority] = "0"; rolledFor(d) })},
		{"its rollout fails", update(7, func(d *appsv1.Deployment) { rolledFor(d); setFailed(d) })},
		{"a malformed priority", update(3, func(d *appsv1.Deployment) { d.Annotations[plan.AnnotationWavePriority] = "soon" })},
		{"opted out", update(5, func(d *appsv1.Deployment) { delete(d.Annotations, plan.AnnotationAuto) })},
		{"it recovers", update(7, rolledFor)},
		{"one not rolled for the change fails", update(9, setFailed)},
	}
}

// checkGather gathers the policy input of sync s three ways: as the sync
// does, with an empty memo, and with every consumer's facts read afresh.
// The first two must be equal, and the rules must judge all three alike;
// with waves, when every consumer is read anyway, all three are equal.
func checkGather(t *testing.T, f *fixture, s fanoutSync, step string, withWaves bool) {
	t.Helper()
	w, err := getWorkload(must(f.c.view.kinds.get("Deployment")), s.key.name)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.c.gatherer.gather(s.key, w, s.p, s.current, f.c.opts.Clock.Now(), f.c.memory)
	memo := f.c.gatherer.memo
	f.c.gatherer.memo = newConsumerFactsMemo()
	fresh, _ := f.c.gatherer.gather(s.key, w, s.p, s.current, f.c.opts.Clock.Now(), f.c.memory)
	f.c.gatherer.memo = memo
	every := gatherEveryConsumer(f.c, s.key.name.Namespace, fresh)
	for _, in := range []plan.PolicyInput{got, fresh, every} {
		// The consumers index is a set: its order was never defined.
		slices.SortFunc(in.Changed[0].Consumers, func(a, b plan.ConsumerFacts) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	}
	if !reflect.DeepEqual(got, fresh) || (withWaves && !reflect.DeepEqual(got, every)) {
		t.Fatalf("%s: %s gathered\n%+v\nwant, read afresh,\n%+v", step, s.key, got, every)
	}
	if hg, he := plan.Judge(got, plan.Rules()), plan.Judge(every, plan.Rules()); hg != he {
		t.Errorf("%s: %s judged %+v, with every consumer %+v", step, s.key, hg, he)
	}
}

// gatherEveryConsumer returns in with the facts of every consumer of each
// changed object read afresh from the caches, as gatherChange read them
// before it read only those the rules ask about, each only once.
func gatherEveryConsumer(c *Controller, namespace string, in plan.PolicyInput) plan.PolicyInput {
	in.Changed = slices.Clone(in.Changed)
	for i := range in.Changed {
		o := &in.Changed[i]
		withWaves := o.WavesError == nil && o.Waves != nil
		var digests map[string]string
		if obj, ok := c.view.lookupConfig(namespace, o.Ref); ok && withWaves {
			digests = plan.CachedDigests(obj)
		}
		o.Consumers = nil
		for _, m := range c.view.consumersOf(namespace, o.Ref) {
			annotations := m.w.meta.GetAnnotations()
			f := plan.ConsumerFacts{ID: m.key.id()}
			var started time.Time
			if rec, err := plan.ParseRolloutRecord(annotations[plan.AnnotationRollout]); err == nil {
				f.Record, started = &rec, rec.Started
			}
			f.State = plan.CalculateRolloutState(m.w.status, started, in.Now, c.opts.RolloutTimeout)
			if withWaves {
				f.Priority, f.PriorityError = plan.ParseWavePriority(annotations)
				f.ConsumesChange = plan.ConsumesChange(c.opts.HashKey, annotations[plan.AnnotationConsumed],
					plan.CalculateConsumption(m.w.references, m.o), o.Ref, digests)
			}
			o.Consumers = append(o.Consumers, f)
		}
	}
	return in
}

// must returns v, dropping ok: for lookups a test knows succeed.
func must[V any](v V, _ bool) V { return v }
