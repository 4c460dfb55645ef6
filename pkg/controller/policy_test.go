package controller

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/reroll/reroll/pkg/plan"
)

// policyFixture is a fixture for the rollout-safety policies: Deployments
// consuming ConfigMap "cfg", adopted, with complete rollouts, on a fake
// clock, whose status the test sets as the workload controller would.
type policyFixture struct {
	*fixture
	ctx   context.Context
	clock *testingclock.FakeClock
	names []string
	rv    int
}

// newPolicyFixture adopts Deployments names consuming every key of "cfg",
// each with the annotations extra[name], under opts.
func newPolicyFixture(t *testing.T, cfgAnnotations map[string]string, names []string, extra map[string]map[string]string, opts func(*Options)) *policyFixture {
	cm := configMap("cfg", map[string]string{"a": "1"})
	cm.Annotations = cfgAnnotations
	f := newFixture(t, cm)
	clk := testingclock.NewFakeClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	f.opts.Clock = clk
	f.opts.RolloutTimeout = 10 * time.Minute
	if opts != nil {
		opts(&f.opts)
	}
	p := &policyFixture{fixture: f, clock: clk, names: names, rv: 100}
	p.ctx = f.start()
	for _, n := range names {
		annotations := auto()
		for k, v := range extra[n] {
			annotations[k] = v
		}
		d := f.adopted(deployment(n, annotations, envFromConfigMap("cfg")))
		setComplete(d)
		p.deliver(d)
	}
	f.writes()
	return p
}

// setComplete gives d the status of a complete rollout of its spec.
func setComplete(d *appsv1.Deployment) {
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}
}

// setProgressing gives d the status of a rollout of its spec that goes on:
// observed, with no pod updated yet.
func setProgressing(d *appsv1.Deployment) {
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, AvailableReplicas: 1}
}

// setFailed gives d the status of a rollout past its progress deadline.
func setFailed(d *appsv1.Deployment) {
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Reason: "ProgressDeadlineExceeded"}}}
}

// server returns Deployment name as the fake API server holds it.
func (p *policyFixture) server(name string) *appsv1.Deployment {
	obj, err := p.client.Tracker().Get(appsv1.SchemeGroupVersion.WithResource("deployments"), testNamespace, name)
	if err != nil {
		p.t.Fatal(err)
	}
	return obj.(*appsv1.Deployment).DeepCopy()
}

// deliver stores d with a new resourceVersion and delivers it to the cache
// and the workload handler, as the informer would.
func (p *policyFixture) deliver(d *appsv1.Deployment) {
	p.t.Helper()
	p.rv++
	d.ResourceVersion = strconv.Itoa(p.rv)
	a, _ := p.c.view.kinds.get("Deployment")
	old, exists, _ := a.informer().GetIndexer().GetByKey(testNamespace + "/" + d.Name)
	p.seed(d)
	now, _, _ := a.informer().GetIndexer().GetByKey(testNamespace + "/" + d.Name)
	if exists {
		p.c.observeRollout(p.ctx, a, old, now)
	} else {
		p.c.observeRollout(p.ctx, a, nil, now)
	}
}

// rolled delivers reroll's write to name, with a new generation and the
// status status gives it.
func (p *policyFixture) rolled(name string, status func(*appsv1.Deployment)) {
	d := p.server(name)
	d.Generation++
	status(d)
	p.deliver(d)
}

// setStatus delivers a status update of name.
func (p *policyFixture) setStatus(name string, status func(*appsv1.Deployment)) {
	d := p.server(name)
	status(d)
	p.deliver(d)
}

// change sets cfg's key a to value in the API server and the cache.
func (p *policyFixture) change(value string, annotations map[string]string) {
	cm := configMap("cfg", map[string]string{"a": value})
	cm.Annotations = annotations
	p.seed(cm)
}

// syncAll syncs every Deployment, in order, and returns the names of those
// a patch rolled.
func (p *policyFixture) syncAll(names ...string) []string {
	p.t.Helper()
	if names == nil {
		names = p.names
	}
	for _, n := range names {
		p.sync(p.ctx, n)
	}
	var rolled []string
	for _, w := range p.writes() {
		if strings.Contains(w.body, plan.AnnotationConfigHash) {
			rolled = append(rolled, w.name)
		}
	}
	return rolled
}

// eventsOf returns the Events since the last check whose text contains
// part.
func (p *policyFixture) eventsOf(part string) []string {
	var out []string
	for _, e := range p.events() {
		if strings.Contains(e, part) {
			out = append(out, e)
		}
	}
	return out
}

func TestPolicyPause(t *testing.T) {
	paused := map[string]string{plan.AnnotationPaused: "true"}
	tests := []struct {
		name       string
		workload   map[string]string
		cfg        map[string]string
		namespace  map[string]string
		wantRolled bool
		wantEvent  string
	}{
		{"nothing paused", nil, nil, nil, true, "Normal Rolled"},
		{"workload paused", paused, nil, nil, false, "Normal RolloutHeld Roll held (paused): the workload is paused"},
		{"ConfigMap paused", nil, paused, nil, false, "Normal RolloutHeld Roll held (paused): ConfigMap/cfg is paused"},
		{"Namespace paused", nil, nil, paused, false, "Normal RolloutHeld Roll held (paused): its namespace is paused"},
		{"pause off", map[string]string{plan.AnnotationPaused: "false"}, nil, nil, true, "Normal Rolled"},
		{"malformed pause", map[string]string{plan.AnnotationPaused: "yes"}, nil, nil, false, `Warning InvalidAnnotation the workload has reroll.dev/paused="yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicyFixture(t, nil, []string{"web"}, map[string]map[string]string{"web": tt.workload}, nil)
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace, Annotations: tt.namespace}}
			p.seed(ns)
			p.events()
			p.change("2", tt.cfg)
			rolled := p.syncAll()
			if (len(rolled) == 1) != tt.wantRolled {
				t.Errorf("rolled %q, want rolled: %v", rolled, tt.wantRolled)
			}
			if got := p.events(); len(got) != 1 || !strings.HasPrefix(got[0], tt.wantEvent) {
				t.Errorf("events %q, want one starting %q", got, tt.wantEvent)
			}
			if tt.wantRolled {
				return
			}
			// Held again: no second Event, no write. Unpausing rolls once.
			if rolled := p.syncAll(); len(rolled) != 0 || len(p.events()) != 0 {
				t.Errorf("a second look wrote %q or sent Events", rolled)
			}
			d := p.server("web")
			delete(d.Annotations, plan.AnnotationPaused)
			p.deliver(d)
			p.change("2", nil)
			if tt.namespace != nil {
				// Unpausing the Namespace enqueues its workloads.
				unpaused := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}
				namespaceHandler(p.ctx, p.c).OnUpdate(ns, unpaused)
				p.seed(unpaused)
				if got := drainQueue(p.c); !slices.Contains(got, "Deployment team-a/web") {
					t.Errorf("unpausing the Namespace enqueued %q", got)
				}
			}
			if rolled := p.syncAll(); !slices.Equal(rolled, []string{"web"}) {
				t.Errorf("after the pause: rolled %q", rolled)
			}
			if got := p.scrape(`reroll_rollouts_held{reason="paused"}`); got != "0" {
				t.Errorf("held paused after the pause = %q", got)
			}
		})
	}
}

// Rolled N times within the window, a workload is held, then rolls once,
// to the latest content, when the window allows.
func TestPolicyFlapBreaker(t *testing.T) {
	p := newPolicyFixture(t, nil, []string{"web"}, nil, func(o *Options) { o.MaxRollsPerWorkload = plan.RollLimit{N: 3, Window: time.Minute} })
	for i := range 3 {
		p.change(fmt.Sprint("v", i), nil)
		if rolled := p.syncAll(); len(rolled) != 1 {
			t.Fatalf("change %d rolled %q", i, rolled)
		}
		p.rolled("web", setComplete)
		p.clock.Step(10 * time.Second)
	}
	p.events()
	for i := 3; i < 6; i++ {
		p.change(fmt.Sprint("v", i), nil)
		if rolled := p.syncAll(); len(rolled) != 0 {
			t.Fatalf("change %d rolled %q while throttled", i, rolled)
		}
		p.clock.Step(5 * time.Second)
	}
	if got := p.eventsOf("RolloutThrottled"); len(got) != 1 || !strings.Contains(got[0], "rolled 3 times within 1m0s") {
		t.Errorf("throttled Events %q, want one", got)
	}
	if got := p.scrape(`reroll_rollouts_held{reason="throttled"}`); got != "1" {
		t.Errorf("held throttled = %q", got)
	}
	// The first roll was at 0s: the window allows a roll at 60s.
	p.clock.SetTime(time.Date(2026, 11, 30, 12, 1, 0, 0, time.UTC))
	if rolled := p.syncAll(); len(rolled) != 1 {
		t.Fatalf("after the window: rolled %q", rolled)
	}
	if got, want := p.server("web").Annotations[plan.AnnotationConsumed], p.recordedState(p.server("web")); got != want {
		t.Errorf("the roll after the window is not to the latest content")
	}
}

// Rolls are spaced at the pacing rate, each workload at its own slot.
func TestPolicyPacing(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	p := newPolicyFixture(t, nil, names, nil, func(o *Options) { o.MaxRolloutsPerSecond = 2 })
	p.change("2", nil)
	start := p.clock.Now()
	var times []time.Duration
	for range 40 {
		for range p.syncAll(names...) {
			times = append(times, p.clock.Since(start))
		}
		p.clock.Step(50 * time.Millisecond)
	}
	want := []time.Duration{0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}
	if !slices.Equal(times, want) {
		t.Errorf("rolls at %v, want %v", times, want)
	}
}

// No more rollouts than the cap are incomplete at once; a completion lets
// the next one roll.
func TestPolicyInflightCap(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	p := newPolicyFixture(t, nil, names, nil, func(o *Options) { o.MaxInflightRollouts = 2 })
	p.change("2", nil)
	if rolled := p.syncAll(); !slices.Equal(rolled, []string{"a", "b"}) {
		t.Fatalf("rolled %q, want a and b", rolled)
	}
	if got := p.scrape("reroll_rollouts_inflight"); got != "2" {
		t.Errorf("in flight = %q", got)
	}
	// Their writes arrive, rollouts progressing: still 2 in flight.
	p.rolled("a", setProgressing)
	p.rolled("b", setProgressing)
	if rolled := p.syncAll("c", "d"); len(rolled) != 0 {
		t.Fatalf("rolled %q past the cap", rolled)
	}
	if got := p.scrape(`reroll_rollouts_held{reason="inflight"}`); got != "2" {
		t.Errorf("held inflight = %q", got)
	}
	p.setStatus("a", setComplete)
	if n := p.c.queue.Len(); n != 2 {
		t.Errorf("a completion woke %d keys, want the 2 held", n)
	}
	if rolled := p.syncAll("c", "d"); !slices.Equal(rolled, []string{"c"}) {
		t.Errorf("after a completed: rolled %q, want c", rolled)
	}
}

// One change rolls its consumers in waves, each after the one before
// completed, ordered by wave-priority then name.
func TestPolicyWaves(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e"}
	waves := map[string]string{plan.AnnotationWaves: "1,40%,100%"}
	p := newPolicyFixture(t, waves, names, map[string]map[string]string{"e": {plan.AnnotationWavePriority: "0"},
		"a": {plan.AnnotationWavePriority: "1"}, "b": {plan.AnnotationWavePriority: "1"}, "c": {plan.AnnotationWavePriority: "1"}, "d": {plan.AnnotationWavePriority: "1"}}, nil)
	p.change("2", waves)
	if rolled := p.syncAll(); !slices.Equal(rolled, []string{"e"}) {
		t.Fatalf("wave 1 rolled %q, want e (priority 0)", rolled)
	}
	if got := p.eventsOf("RolloutHeld"); len(got) != 4 || !strings.Contains(got[0], "Roll held (wave): waiting for 1 of the earlier wave(s) of ConfigMap/cfg") {
		t.Errorf("wave Events %q", got)
	}
	p.rolled("e", setProgressing)
	if rolled := p.syncAll(); len(rolled) != 0 {
		t.Fatalf("rolled %q before wave 1 completed", rolled)
	}
	p.setStatus("e", setComplete)
	if rolled := p.syncAll(); !slices.Equal(rolled, []string{"a", "b"}) {
		t.Fatalf("wave 2 (40%% of 5) rolled %q, want a and b", rolled)
	}
	p.rolled("a", setComplete)
	p.rolled("b", setProgressing)
	if rolled := p.syncAll(); len(rolled) != 0 {
		t.Fatalf("rolled %q while b's rollout goes on", rolled)
	}
	p.setStatus("b", setComplete)
	if rolled := p.syncAll(); !slices.Equal(rolled, []string{"c", "d"}) {
		t.Fatalf("wave 3 rolled %q", rolled)
	}
	for _, n := range []string{"c", "d"} {
		p.rolled(n, setComplete)
	}
	if rolled := p.syncAll(); len(rolled) != 0 {
		t.Errorf("rolled %q twice", rolled)
	}
}

// A failed canary halts its change; it recovers, or the object changes
// again, and the change goes on.
func TestPolicyHalt(t *testing.T) {
	names := []string{"a", "b", "c"}
	waves := map[string]string{plan.AnnotationWaves: "1,100%"}
	start := func(t *testing.T) *policyFixture {
		p := newPolicyFixture(t, waves, names, nil, nil)
		p.change("bad", waves)
		if rolled := p.syncAll(); !slices.Equal(rolled, []string{"a"}) {
			t.Fatalf("canary: rolled %q", rolled)
		}
		p.rolled("a", setFailed)
		p.events()
		return p
	}
	t.Run("held while the canary fails, then goes on when it recovers", func(t *testing.T) {
		p := start(t)
		if rolled := p.syncAll(); len(rolled) != 0 {
			t.Fatalf("rolled %q past a failed canary", rolled)
		}
		events := p.events()
		var onHeld, onFailed int
		for _, e := range events {
			switch {
			case strings.HasPrefix(e, "Warning RolloutHalted Roll held: the rollout of Deployment team-a/a"):
				onHeld++
			case strings.HasPrefix(e, "Warning RolloutHalted this rollout, which reroll started for a change of ConfigMap/cfg, failed"):
				onFailed++
			}
		}
		if onHeld != 2 || onFailed != 1 {
			t.Errorf("halt Events %q: want 2 on the held and 1 on the failed workload", events)
		}
		if got := p.scrape(`reroll_rollouts_held{reason="halted"}`); got != "2" {
			t.Errorf("held halted = %q", got)
		}
		// A restart forgets everything in memory: the halt is derived again.
		p.c.memory.holds, p.c.memory.lastDigests = newHoldBook(), newKeyedMemory[map[plan.ConfigRef]map[string]string]()
		p.c.memory.writes, p.c.memory.dryRunStates = ownWrites{from: newKeyedMemory[string]()}, newKeyedMemory[string]()
		if rolled := p.syncAll("b", "c"); len(rolled) != 0 {
			t.Fatalf("rolled %q after a restart during the halt", rolled)
		}
		p.setStatus("a", setComplete)
		if rolled := p.syncAll("b", "c"); !slices.Equal(rolled, []string{"b", "c"}) {
			t.Errorf("after recovery rolled %q", rolled)
		}
	})
	t.Run("a new change starts the waves afresh, the failed workload first", func(t *testing.T) {
		p := start(t)
		p.syncAll()
		p.change("fixed", waves)
		if rolled := p.syncAll(); !slices.Equal(rolled, []string{"a"}) {
			t.Fatalf("the fix rolled %q, want the canary a first", rolled)
		}
		p.rolled("a", setComplete)
		if rolled := p.syncAll(); !slices.Equal(rolled, []string{"b", "c"}) {
			t.Errorf("then rolled %q", rolled)
		}
	})
	t.Run("a workload that was already failing halts nothing", func(t *testing.T) {
		p := newPolicyFixture(t, waves, names, nil, nil)
		p.setStatus("a", setFailed) // a bad image, before any change
		p.change("2", waves)
		if rolled := p.syncAll(); !slices.Equal(rolled, []string{"a"}) {
			t.Fatalf("rolled %q", rolled)
		}
		p.rolled("a", setFailed)
		if rolled := p.syncAll(); len(rolled) != 0 {
			t.Fatalf("rolled %q: the canary is failing, so wave 2 waits", rolled)
		}
		if got := p.eventsOf("RolloutHalted"); len(got) != 0 {
			t.Errorf("halt Events %q for a workload that was failing before", got)
		}
	})
}

// Malformed policy annotations hold the roll with a Warning, never roll it
// at once.
func TestPolicyInvalidAnnotations(t *testing.T) {
	tests := []struct {
		name     string
		cfg      map[string]string
		workload map[string]string
		want     string
	}{
		{"waves", map[string]string{plan.AnnotationWaves: "0,abc"}, nil, `ConfigMap/cfg has reroll.dev/waves: item 1 "0" is not a count`},
		{"priority", map[string]string{plan.AnnotationWaves: "1,100%"}, map[string]string{plan.AnnotationWavePriority: "-1"}, "reroll.dev/wave-priority must be an integer of at least 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicyFixture(t, tt.cfg, []string{"web"}, map[string]map[string]string{"web": tt.workload}, nil)
			p.events()
			p.change("2", tt.cfg)
			if rolled := p.syncAll(); len(rolled) != 0 {
				t.Errorf("rolled %q", rolled)
			}
			if got := p.events(); len(got) != 1 || !strings.HasPrefix(got[0], "Warning InvalidAnnotation") || !strings.Contains(got[0], tt.want) {
				t.Errorf("events %q, want an InvalidAnnotation with %q", got, tt.want)
			}
		})
	}
}

// A roll outside its rollout window is held, with an Event naming the
// opening, and rolls once when the window opens; --rollout-window applies
// when nothing sets its own, and a malformed window holds as invalid.
func TestPolicyRolloutWindow(t *testing.T) {
	// The fixture's clock reads Monday 2026-11-30 12:00 UTC.
	tests := []struct {
		name      string
		cfg       map[string]string
		flag      string
		wantEvent string
	}{
		{name: "the ConfigMap's window", cfg: map[string]string{plan.AnnotationRolloutWindow: "Mon 12:10-13:00 UTC"},
			wantEvent: "Normal RolloutHeld Roll held (window): outside the rollout window of ConfigMap/cfg; rolling when it opens, at 2026-11-30T12:10:00Z"},
		{name: "--rollout-window", flag: "Mon 12:10-13:00 UTC",
			wantEvent: "Normal RolloutHeld Roll held (window): outside the rollout window of --rollout-window; rolling when it opens, at 2026-11-30T12:10:00Z"},
		{name: "malformed", cfg: map[string]string{plan.AnnotationRolloutWindow: "Mon noon"},
			wantEvent: "Warning InvalidAnnotation ConfigMap/cfg has reroll.dev/rollout-window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicyFixture(t, tt.cfg, []string{"web"}, nil, func(o *Options) {
				o.RolloutWindow, _ = plan.ParseWindows(tt.flag)
			})
			p.events()
			p.change("2", tt.cfg)
			if rolled := p.syncAll(); len(rolled) != 0 {
				t.Fatalf("rolled %q outside the window", rolled)
			}
			if got := p.events(); len(got) != 1 || !strings.HasPrefix(got[0], tt.wantEvent) {
				t.Fatalf("events %q, want one starting %q", got, tt.wantEvent)
			}
			if strings.HasPrefix(tt.wantEvent, "Warning") {
				return
			}
			p.clock.Step(9 * time.Minute)
			if rolled := p.syncAll(); len(rolled) != 0 {
				t.Fatalf("rolled %q a minute before the window", rolled)
			}
			p.clock.Step(time.Minute)
			if rolled := p.syncAll(); len(rolled) != 1 {
				t.Errorf("rolled %q when the window opened, want web once", rolled)
			}
		})
	}
}

// foldKeys records, per Event, what client-go's events broadcaster folds
// isomorphic Events by (the regarding object's name, the type, the reason
// and the action), then passes the Event on.
type foldKeys struct {
	next events.EventRecorder
	keys map[string][]string // by regarding object's name
}

// Eventf implements events.EventRecorder.
func (f *foldKeys) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...interface{}) {
	if m, err := meta.Accessor(regarding); err == nil {
		f.keys[m.GetName()] = append(f.keys[m.GetName()], eventtype+" "+reason+" "+action)
	}
	f.next.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

// A consumer held by its wave, and then, its wave done but the window
// closed meanwhile, by the window, gets a second Event that client-go
// cannot fold into the first: the window's Event, naming the opening, is
// seen. (With one action for every hold, the broadcaster kept the wave's
// note and counted the window hold as a repeat of it.)
func TestPolicyHoldOfANewReasonIsItsOwnEvent(t *testing.T) {
	// The fixture's clock reads Monday 2026-11-30 12:00 UTC.
	cfg := map[string]string{plan.AnnotationWaves: "1,100%", plan.AnnotationRolloutWindow: "Mon 12:00-12:10 UTC; Mon 12:20-12:30 UTC"}
	p := newPolicyFixture(t, cfg, []string{"a", "b"}, nil, nil)
	keys := &foldKeys{next: p.c.reporter.recorder, keys: map[string][]string{}}
	p.c.reporter.recorder = keys
	p.events()
	p.change("2", cfg)
	if rolled := p.syncAll(); !slices.Equal(rolled, []string{"a"}) {
		t.Fatalf("wave 1 rolled %q, want a", rolled)
	}
	p.rolled("a", setComplete)
	p.clock.Step(10 * time.Minute)
	if rolled := p.syncAll("b"); len(rolled) != 0 {
		t.Fatalf("rolled %q with the window closed", rolled)
	}
	held := p.eventsOf("RolloutHeld")
	if len(held) != 2 || !strings.Contains(held[0], "Roll held (wave)") || !strings.Contains(held[1], "Roll held (window): outside the rollout window of ConfigMap/cfg; rolling when it opens, at 2026-11-30T12:20:00Z") {
		t.Fatalf("hold Events %q, want b's wave hold, then its window hold naming 12:20", held)
	}
	if got := keys.keys["b"]; len(got) != 2 || got[0] == got[1] {
		t.Errorf("b's hold Events are %q: the second folds into the first", got)
	}
}

// reroll.dev/release on a paused ConfigMap lets its current change through,
// once; a later change is held again, and a release naming other content
// is a Warning on the object.
func TestPolicyRelease(t *testing.T) {
	paused := map[string]string{plan.AnnotationPaused: "true"}
	p := newPolicyFixture(t, paused, []string{"web"}, nil, nil)
	p.events()
	p.change("2", paused)
	if rolled := p.syncAll(); len(rolled) != 0 {
		t.Fatalf("rolled %q while paused", rolled)
	}
	events := p.events()
	if len(events) != 1 || !strings.Contains(events[0], "; to let this change through, set reroll.dev/release=") {
		t.Fatalf("events %q, want a hold that says how to release it", events)
	}
	digest := strings.TrimPrefix(strings.Fields(events[0][strings.Index(events[0], "reroll.dev/release="):])[0], "reroll.dev/release=")
	released := map[string]string{plan.AnnotationPaused: "true", plan.AnnotationRelease: digest}
	p.change("2", released)
	if rolled := p.syncAll(); len(rolled) != 1 {
		t.Fatalf("the released change rolled %q, want web once", rolled)
	}
	p.rolled("web", setComplete)
	before := configMap("cfg", map[string]string{"a": "2"})
	before.Annotations = released
	p.change("3", released) // the release names the old content now
	after := configMap("cfg", map[string]string{"a": "3"})
	after.Annotations = released
	configHandler[*corev1.ConfigMap](p.ctx, p.c, plan.TypeConfigMap).OnUpdate(cachedCopy(before).(*corev1.ConfigMap), cachedCopy(after).(*corev1.ConfigMap))
	if rolled := p.syncAll(); len(rolled) != 0 {
		t.Errorf("a later change rolled %q: the release named the one before", rolled)
	}
	var warned bool
	for _, e := range p.events() {
		warned = warned || strings.HasPrefix(e, "Warning InvalidAnnotation reroll.dev/release=")
	}
	if !warned {
		t.Error("no Warning for a release that names other content")
	}
}
