//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The bake on the real node (issue #29): a config edit that makes the app
// exit 1 a moment after it starts costs one wave, with or without readiness
// probes, and with a StatefulSet in the first wave; a good edit rolls the
// waves a bake apart.

// bakeTime is the --bake-time of these tests: long enough for a container
// that exits 2 s after it starts to restart inside it, short enough for
// the suite.
const bakeTime = 20 * time.Second

// bakeConsumers is how many workloads share the ConfigMap, in waves 1,100%.
const bakeConsumers = 6

// bakeWorkload makes a pod run echoconfig on the real node, with APP_VALUE
// from ConfigMap "app", and a readiness probe on /ready only with probe.
// echoconfig exits 1 two seconds after it starts when the value is
// "crash".
func bakeWorkload(probe bool) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		onRealNode("app")(s)
		if !probe {
			s.Containers[0].ReadinessProbe = nil
		}
	}
}

// bakeFixture is the ConfigMap "app", in waves 1,100%, and its consumers:
// the first (priority 0) a StatefulSet or a Deployment, the others
// Deployments, all on the real node.
type bakeFixture struct {
	t     *testing.T
	ns    string
	first string
	names []string
	rolls *rollLog
	// sts: the first is a StatefulSet, whose rolls are its revisions.
	sts bool
}

// newBakeFixture creates the ConfigMap and its consumers and starts reroll
// with the bake; the consumers are adopted and their pods run "good".
func newBakeFixture(t *testing.T, probe, sts bool) (*bakeFixture, *rerollProcess) {
	t.Helper()
	requireRealNode(t)
	f := &bakeFixture{t: t, ns: newNamespace(t), sts: sts}
	cm := configMap(f.ns, "app", map[string]string{"value": "good"})
	cm.Annotations = map[string]string{"reroll.dev/waves": "1,100%"}
	create(t, cm)
	for i := range bakeConsumers {
		name := fmt.Sprintf("d%d", i)
		priority := "1"
		if i == 0 {
			priority = "0"
		}
		annotations := map[string]string{annotationAuto: "true", "reroll.dev/wave-priority": priority}
		if i == 0 && sts {
			s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "s0", Namespace: f.ns, Annotations: annotations},
				Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "s0"}},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "s0"}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}}}
			bakeWorkload(probe)(&s.Spec.Template.Spec)
			if _, err := testEnv.client.AppsV1().StatefulSets(f.ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			f.first = "s0"
			continue
		}
		d := testDeployment(f.ns, name, annotations, bakeWorkload(probe))
		create(t, d)
		if i == 0 {
			f.first = name
		}
		f.names = append(f.names, name)
	}
	r := f.startReroll()
	for _, n := range f.names {
		waitAdopted(t, f.ns, n)
	}
	if sts {
		waitFor(t, "adoption of s0", func(ctx context.Context) (bool, error) {
			s, err := testEnv.client.AppsV1().StatefulSets(f.ns).Get(ctx, "s0", metav1.GetOptions{})
			return err == nil && s.Annotations[annotationConsumed] != "", err
		})
	}
	// Only failures reroll caused halt a change: a rollout that had not
	// completed when reroll rolled it halts nobody.
	waitComplete(t, f.ns, "d")
	if sts {
		waitForUpTo(t, "s0's pod to be ready", rolloutTimeout, func(ctx context.Context) (bool, error) {
			s, err := testEnv.client.AppsV1().StatefulSets(f.ns).Get(ctx, "s0", metav1.GetOptions{})
			return err == nil && s.Status.ReadyReplicas == 1 && s.Status.UpdateRevision == s.Status.CurrentRevision, err
		})
	}
	f.rolls = watchNamespaceRolls(t, f.ns)
	return f, r
}

// startReroll starts reroll in the fixture's namespace with the bake.
func (f *bakeFixture) startReroll() *rerollProcess {
	f.t.Helper()
	return startReroll(f.t, f.ns, "--bake-time="+bakeTime.String(), "--kinds=deployments,statefulsets")
}

// others are the consumers of the later wave.
func (f *bakeFixture) others() []string {
	var out []string
	for _, n := range f.names {
		if n != f.first {
			out = append(out, n)
		}
	}
	return out
}

// rolledOthers returns how often the later wave's consumers rolled.
func (f *bakeFixture) rolledOthers() int {
	n := 0
	for _, name := range f.others() {
		n += f.rolls.count(name)
	}
	return n
}

// firstRolls returns how often the first consumer rolled: a Deployment's
// rolls are in the roll log; a StatefulSet's are its revisions.
func (f *bakeFixture) firstRolls(ctx context.Context) (int, error) {
	if !f.sts {
		return f.rolls.count(f.first), nil
	}
	s, err := testEnv.client.AppsV1().StatefulSets(f.ns).Get(ctx, f.first, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	if s.Spec.Template.Annotations[annotationConfigHash] == "" {
		return 0, nil
	}
	revisions, err := testEnv.client.AppsV1().ControllerRevisions(f.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	return len(revisions.Items) - 1, nil
}

// waitFirstRolls waits until the first consumer rolled n times.
func (f *bakeFixture) waitFirstRolls(n int) {
	f.t.Helper()
	waitForUpTo(f.t, fmt.Sprintf("%s to roll %d times", f.first, n), rolloutTimeout, func(ctx context.Context) (bool, error) {
		got, err := f.firstRolls(ctx)
		return got >= n, err
	})
}

// setValue sets the ConfigMap's value.
func (f *bakeFixture) setValue(v string) {
	updateConfigMap(f.t, f.ns, "app", func(cm *corev1.ConfigMap) { cm.Data["value"] = v })
}

// holdOthers checks, for d, that no consumer of the later wave rolls.
func (f *bakeFixture) holdOthers(d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if n := f.rolledOthers(); n != 0 {
			f.t.Fatalf("the later wave rolled %d times while %s crash-looped", n, f.first)
		}
		time.Sleep(time.Second) // a sample a second of a condition that must stay false
	}
}

// crashAndHalt sets the value that makes the app exit 1: the first
// consumer rolls once, reroll halts the change, and no consumer of the
// later wave rolls for hold.
func (f *bakeFixture) crashAndHalt(r *rerollProcess, hold time.Duration) {
	f.t.Helper()
	f.setValue("crash")
	f.waitFirstRolls(1)
	r.waitLog(1, "Roll held", `reason="halted"`)
	f.holdOthers(hold)
}

// fixAndRoll sets a good value: the first consumer rolls again, bakes, and
// then every other consumer rolls once.
func (f *bakeFixture) fixAndRoll(firstRollsBefore int) {
	f.t.Helper()
	f.setValue("fixed")
	f.waitFirstRolls(firstRollsBefore + 1)
	rolledAt := time.Now()
	f.rolls.waitTotalUpTo("d", len(f.others())+f.rolls.count(f.first), rolloutTimeout)
	for _, name := range f.others() {
		if n := f.rolls.count(name); n != 1 {
			f.t.Errorf("%s rolled %d times after the fix, want once", name, n)
		}
	}
	if waited := f.rolls.at(f.others()[0], 0).Sub(rolledAt); waited < bakeTime-2*time.Second {
		f.t.Errorf("the later wave rolled %v after the first, before its %v bake", waited, bakeTime)
	}
}

// TestBakeHaltsACrashingWave: a ConfigMap shared by 6 Deployments without
// readiness probes, in waves 1,100%; an edit sets a value that makes the
// app exit 1 two seconds after it starts. The first wave rolls, its pod
// crash-loops, and the change halts; the other 5 never roll, checked for
// two minutes with a kill -9 of reroll in the middle. Fixing the ConfigMap
// rolls the first wave again, and once it has baked the other 5 roll, once
// each.
func TestBakeHaltsACrashingWave(t *testing.T) {
	t.Parallel()
	f, r := newBakeFixture(t, false, false)
	f.crashAndHalt(r, time.Minute)
	r.kill()
	r = f.startReroll()
	r.waitLog(1, "Roll held", `reason="halted"`)
	f.holdOthers(time.Minute)
	// The halt names the crashing pod and how it failed: it exited, or,
	// if reroll saw it only after kubelet started it again, it restarted.
	// (A run saw the exit before the restart, and the Event then named
	// neither.)
	halted := strings.Join(eventNotes(t, f.ns, f.first, "RolloutHalted"), "\n")
	if !regexp.MustCompile(`container ` + f.first + `-[a-z0-9]+-[a-z0-9]+/app exited with code 1|restarted \d+ times? in .*\(pods ` + f.first + `-`).MatchString(halted) {
		t.Errorf("the Event on %s does not name the crashing pod and its exit or restarts: %q", f.first, halted)
	} else {
		t.Logf("the halt's Event: %s", halted)
	}
	f.fixAndRoll(1)
}

// The same with readiness probes: the crashing pod is Ready only between
// its probe and its exit, and the change halts just the same.
func TestBakeHaltsACrashingWaveWithProbes(t *testing.T) {
	t.Parallel()
	f, r := newBakeFixture(t, true, false)
	f.crashAndHalt(r, 30*time.Second)
	f.fixAndRoll(1)
}

// The same with a StatefulSet in the first wave.
func TestBakeHaltsACrashingStatefulSet(t *testing.T) {
	t.Parallel()
	f, r := newBakeFixture(t, false, true)
	f.crashAndHalt(r, 30*time.Second)
	f.fixAndRoll(1)
}

// The fault-free path: a good edit across 6 consumers in waves 1,100%
// completes in about one bake plus the rollouts, every consumer rolled
// once.
func TestBakeGoodEditRollsTheWavesABakeApart(t *testing.T) {
	t.Parallel()
	f, _ := newBakeFixture(t, false, false)
	start := time.Now()
	f.fixAndRoll(0)
	took := time.Since(start)
	t.Logf("a good edit rolled %d consumers in waves 1,100%% in %v (bake %v)", bakeConsumers, took.Round(100*time.Millisecond), bakeTime)
	if took > 2*bakeTime+time.Minute {
		t.Errorf("it took %v, over two bakes and a minute of rollouts", took)
	}
}
