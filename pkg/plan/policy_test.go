package plan

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// policyNow is the time every rule table is judged at.
var policyNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// id names a Deployment in namespace "ns".
func id(name string) WorkloadID { return WorkloadID{Kind: "Deployment", Namespace: "ns", Name: name} }

// cfgChange is the change of ConfigMap/cfg the rule tables roll.
const cfgChange ChangeID = "ConfigMap/cfg:0011"

// rolledFor returns a record of a roll for change, from a complete rollout
// or not.
func rolledFor(change ChangeID, fromComplete bool) *RolloutRecord {
	return &RolloutRecord{Started: policyNow.Add(-time.Minute), FromComplete: fromComplete, Changes: []ChangeID{change}}
}

// changedCfg returns the change of ConfigMap/cfg with annotations, waves
// and consumers.
func changedCfg(annotations map[string]string, waves []WaveStep, consumers ...ConsumerFacts) ChangedObject {
	return ChangedObject{Ref: ConfigRef{Type: TypeConfigMap, Name: "cfg"}, Change: cfgChange, Annotations: annotations,
		Waves: waves, Consumers: consumers}
}

// mustWaves parses a waves value a table wants.
func mustWaves(t *testing.T, v string) []WaveStep {
	t.Helper()
	w, err := ParseWaves(v)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// checkHold compares a rule's hold with the reason, wait and message part a
// table wants.
func checkHold(t *testing.T, got Hold, reason HoldReason, wait time.Duration, message string) {
	t.Helper()
	if got.Reason != reason || got.Wait != wait || !strings.Contains(got.Message, message) {
		t.Errorf("got %s (wait %v): %q\nwant %s (wait %v) with %q", got.Reason, got.Wait, got.Message, reason, wait, message)
	}
}

func TestPauseRule(t *testing.T) {
	paused := map[string]string{AnnotationPaused: "true"}
	tests := []struct {
		name                string
		workload, namespace map[string]string
		object              map[string]string
		reason              HoldReason
		message             string
	}{
		{name: "nothing paused"},
		{name: "explicitly not paused", workload: map[string]string{AnnotationPaused: "false"}},
		{name: "the workload", workload: paused, reason: HoldPaused, message: "the workload is paused"},
		{name: "its namespace", namespace: paused, reason: HoldPaused, message: "its namespace is paused"},
		{name: "the changed object", object: paused, reason: HoldPaused, message: "ConfigMap/cfg is paused"},
		{name: "the workload first", workload: paused, object: paused, reason: HoldPaused, message: "the workload"},
		{name: "malformed", object: map[string]string{AnnotationPaused: "yes"}, reason: HoldInvalid, message: `ConfigMap/cfg has reroll.dev/paused="yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := PolicyInput{Now: policyNow, Workload: id("web"), WorkloadAnnotations: tt.workload, NamespaceAnnotations: tt.namespace,
				Changed: []ChangedObject{changedCfg(tt.object, nil)}}
			checkHold(t, PauseRule(in), tt.reason, 0, tt.message)
		})
	}
}

func TestHaltRule(t *testing.T) {
	other := ChangeID("ConfigMap/cfg:ffff")
	tests := []struct {
		name    string
		canary  ConsumerFacts
		reason  HoldReason
		message string
	}{
		{name: "canary complete", canary: ConsumerFacts{ID: id("canary"), Record: rolledFor(cfgChange, true), State: RolloutComplete}},
		{name: "canary progressing", canary: ConsumerFacts{ID: id("canary"), Record: rolledFor(cfgChange, true), State: RolloutProgressing}},
		{name: "canary failed", canary: ConsumerFacts{ID: id("canary"), Record: rolledFor(cfgChange, true), State: RolloutFailed},
			reason: HoldHalted, message: "the rollout of Deployment ns/canary, rolled for the same change of ConfigMap/cfg, failed"},
		{name: "failed, but was failing before", canary: ConsumerFacts{ID: id("canary"), Record: rolledFor(cfgChange, false), State: RolloutFailed}},
		{name: "failed for another change", canary: ConsumerFacts{ID: id("canary"), Record: rolledFor(other, true), State: RolloutFailed}},
		{name: "failed, not rolled by reroll", canary: ConsumerFacts{ID: id("canary"), State: RolloutFailed}},
		{name: "the workload itself failed", canary: ConsumerFacts{ID: id("web"), Record: rolledFor(cfgChange, true), State: RolloutFailed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := PolicyInput{Now: policyNow, Workload: id("web"), Changed: []ChangedObject{changedCfg(nil, nil, tt.canary, ConsumerFacts{ID: id("web")})}}
			h := HaltRule(in)
			wait := time.Duration(0)
			if tt.reason != "" {
				wait = PolicyRecheck
				if h.Failed != tt.canary.ID || h.Change != cfgChange {
					t.Errorf("halt names %v and %q", h.Failed, h.Change)
				}
			}
			checkHold(t, h, tt.reason, wait, tt.message)
		})
	}
}

func TestWaveRule(t *testing.T) {
	// Four consumers, a to d; waves of 1, then 50%, then the rest.
	pending := func(name string) ConsumerFacts { return ConsumerFacts{ID: id(name), ConsumesChange: true} }
	done := func(name string) ConsumerFacts {
		return ConsumerFacts{ID: id(name), Record: rolledFor(cfgChange, true), State: RolloutComplete}
	}
	rolling := func(name string) ConsumerFacts {
		return ConsumerFacts{ID: id(name), Record: rolledFor(cfgChange, true), State: RolloutProgressing}
	}
	tests := []struct {
		name      string
		waves     string
		wavesErr  error
		workload  string
		consumers []ConsumerFacts
		reason    HoldReason
		message   string
	}{
		{name: "no waves: all at once", workload: "d", consumers: []ConsumerFacts{pending("a"), pending("d")}},
		{name: "first wave goes", waves: "1,50%,100%", workload: "a", consumers: []ConsumerFacts{pending("a"), pending("b"), pending("c"), pending("d")}},
		{name: "second wave waits for the first", waves: "1,50%,100%", workload: "b",
			consumers: []ConsumerFacts{pending("a"), pending("b"), pending("c"), pending("d")}, reason: HoldWave,
			message: "waiting for 1 of the earlier wave(s) of ConfigMap/cfg to roll, complete and bake"},
		{name: "second wave waits while the first rolls", waves: "1,50%,100%", workload: "c",
			consumers: []ConsumerFacts{rolling("a"), pending("b"), pending("c"), pending("d")}, reason: HoldWave, message: "waiting for 1 of"},
		{name: "second wave goes once the first completed", waves: "1,50%,100%", workload: "c",
			consumers: []ConsumerFacts{done("a"), pending("b"), pending("c"), pending("d")}},
		{name: "last wave waits for all earlier ones", waves: "1,50%,100%", workload: "d",
			consumers: []ConsumerFacts{done("a"), rolling("b"), pending("c"), pending("d")}, reason: HoldWave, message: "waiting for 2 of"},
		{name: "a consumer the change does not roll is not a member", waves: "1,100%", workload: "b",
			consumers: []ConsumerFacts{{ID: id("a")}, pending("b")}},
		{name: "priority orders the waves", waves: "1,100%", workload: "a",
			consumers: []ConsumerFacts{pending("a"), {ID: id("z"), ConsumesChange: true, Priority: -1}}, reason: HoldWave},
		{name: "malformed waves", wavesErr: errors.New("bad"), workload: "a", consumers: []ConsumerFacts{pending("a")},
			reason: HoldInvalid, message: "ConfigMap/cfg has reroll.dev/waves: bad"},
		{name: "malformed priority", waves: "1,100%", workload: "a",
			consumers: []ConsumerFacts{pending("a"), {ID: id("b"), PriorityError: errors.New("not a number")}},
			reason:    HoldInvalid, message: "Deployment ns/b: not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waves []WaveStep
			if tt.waves != "" {
				waves = mustWaves(t, tt.waves)
			}
			o := changedCfg(nil, waves, tt.consumers...)
			o.WavesError = tt.wavesErr
			h := WaveRule(PolicyInput{Now: policyNow, Workload: id(tt.workload), Changed: []ChangedObject{o}})
			wait := time.Duration(0)
			if tt.reason == HoldWave {
				wait = PolicyRecheck
			}
			checkHold(t, h, tt.reason, wait, tt.message)
		})
	}
}

func TestSortWaveMembers(t *testing.T) {
	members := []ConsumerFacts{
		{ID: WorkloadID{Kind: "StatefulSet", Namespace: "b", Name: "x"}},
		{ID: WorkloadID{Kind: "Deployment", Namespace: "b", Name: "x"}},
		{ID: WorkloadID{Kind: "Deployment", Namespace: "a", Name: "z"}},
		{ID: WorkloadID{Kind: "Deployment", Namespace: "c", Name: "a"}, Priority: -5},
		{ID: WorkloadID{Kind: "Deployment", Namespace: "a", Name: "y"}, Priority: 3},
	}
	SortWaveMembers(members, func(m ConsumerFacts) (WorkloadID, int) { return m.ID, m.Priority })
	var got []string
	for _, m := range members {
		got = append(got, m.ID.String())
	}
	want := []string{"Deployment c/a", "Deployment a/z", "Deployment b/x", "StatefulSet b/x", "Deployment a/y"}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestFlapRule(t *testing.T) {
	limit := RollLimit{N: 2, Window: time.Minute}
	ago := func(d time.Duration) time.Time { return policyNow.Add(-d) }
	tests := []struct {
		name   string
		limit  RollLimit
		rolls  []time.Time
		reason HoldReason
		wait   time.Duration
	}{
		{name: "no limit", rolls: []time.Time{ago(time.Second), ago(2 * time.Second), ago(3 * time.Second)}},
		{name: "under the limit", limit: limit, rolls: []time.Time{ago(10 * time.Second)}},
		{name: "at the limit", limit: limit, rolls: []time.Time{ago(40 * time.Second), ago(10 * time.Second)}, reason: HoldThrottled, wait: 20 * time.Second},
		{name: "over the limit: waits for the N-th latest", limit: limit,
			rolls: []time.Time{ago(50 * time.Second), ago(30 * time.Second), ago(10 * time.Second)}, reason: HoldThrottled, wait: 30 * time.Second},
		{name: "old rolls left the window", limit: limit, rolls: []time.Time{ago(2 * time.Minute), ago(61 * time.Second), ago(10 * time.Second)}},
		{name: "a roll exactly one window ago has left it", limit: limit, rolls: []time.Time{ago(time.Minute), ago(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := FlapRule(PolicyInput{Now: policyNow, RollLimit: tt.limit, RecentRolls: tt.rolls})
			message := ""
			if tt.reason != "" {
				message = "rolled 2 times within 1m0s (--max-rolls-per-workload)"
			}
			checkHold(t, h, tt.reason, tt.wait, message)
		})
	}
}

func TestInflightRule(t *testing.T) {
	tests := []struct {
		name     string
		max, n   int
		self     bool
		reason   HoldReason
		wantWait time.Duration
	}{
		{name: "no cap", n: 100},
		{name: "under the cap", max: 3, n: 2},
		{name: "at the cap", max: 3, n: 3, reason: HoldInflight, wantWait: PolicyRecheck},
		{name: "at the cap, but already in flight", max: 3, n: 3, self: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := InflightRule(PolicyInput{Now: policyNow, MaxInflight: tt.max, Inflight: tt.n, SelfInflight: tt.self})
			message := ""
			if tt.reason != "" {
				message = "3 rollouts are incomplete"
			}
			checkHold(t, h, tt.reason, tt.wantWait, message)
		})
	}
}

func TestPacingRule(t *testing.T) {
	tests := []struct {
		name   string
		slot   time.Time
		reason HoldReason
		wait   time.Duration
	}{
		{name: "no pacing"},
		{name: "slot now", slot: policyNow},
		{name: "slot passed", slot: policyNow.Add(-time.Second)},
		{name: "slot ahead", slot: policyNow.Add(250 * time.Millisecond), reason: HoldPaced, wait: 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := PacingRule(PolicyInput{Now: policyNow, MaxRolloutsPerSecond: 4, PaceSlot: tt.slot})
			message := ""
			if tt.reason != "" {
				message = "rolls are spaced to 4 per second (--max-rollouts-per-second); rolling in 250ms"
			}
			checkHold(t, h, tt.reason, tt.wait, message)
		})
	}
}

// TestJudgeAsksInOrder checks that Judge returns the first rule's hold, and
// that the rules run in the documented order: an operator's pause before a
// halt, a halt before the waves, and the limits last.
func TestJudgeAsksInOrder(t *testing.T) {
	failed := ConsumerFacts{ID: id("canary"), Record: rolledFor(cfgChange, true), State: RolloutFailed}
	everything := PolicyInput{
		Now: policyNow, Workload: id("web"), WorkloadAnnotations: map[string]string{AnnotationPaused: "true"},
		Changed:   []ChangedObject{changedCfg(nil, mustWaves(t, "1,100%"), failed, ConsumerFacts{ID: id("web"), ConsumesChange: true})},
		RollLimit: RollLimit{N: 1, Window: time.Hour}, RecentRolls: []time.Time{policyNow.Add(-time.Minute)},
		MaxInflight: 1, Inflight: 1, MaxRolloutsPerSecond: 1, PaceSlot: policyNow.Add(time.Second),
	}
	// Lift one hold at a time and expect the next rule's.
	steps := []struct {
		want HoldReason
		lift func(*PolicyInput)
	}{
		{HoldPaused, func(in *PolicyInput) { in.WorkloadAnnotations = nil }},
		{HoldHalted, func(in *PolicyInput) { in.Changed[0].Consumers[0].State = RolloutComplete }},
		{HoldThrottled, func(in *PolicyInput) { in.RecentRolls = nil }},
		{HoldInflight, func(in *PolicyInput) { in.Inflight = 0 }},
		{HoldPaced, func(in *PolicyInput) { in.PaceSlot = time.Time{} }},
		{"", nil},
	}
	in := everything
	for _, s := range steps {
		if got := Judge(in, Rules()).Reason; got != s.want {
			t.Fatalf("got %q, want %q", got, s.want)
		}
		if s.lift != nil {
			s.lift(&in)
		}
	}
}

func TestRolloutRecordFor(t *testing.T) {
	in := PolicyInput{Now: policyNow, Changed: []ChangedObject{{Change: "Secret/s:02"}, {Change: "ConfigMap/cfg:01"}}}
	r := RolloutRecordFor(in, RolloutComplete)
	if !r.Started.Equal(policyNow) || !r.FromComplete || strings.Join([]string{string(r.Changes[0]), string(r.Changes[1])}, ",") != "ConfigMap/cfg:01,Secret/s:02" {
		t.Errorf("record %+v", r)
	}
	if RolloutRecordFor(in, RolloutFailed).FromComplete {
		t.Error("a record from a failed rollout says it came from a complete one")
	}
}

// A released change passes the pause, window, halt and waves, and nothing
// else: pacing, the in-flight cap and the flap breaker still apply.
func TestReleasedChange(t *testing.T) {
	if !IsReleased(map[string]string{AnnotationRelease: "0011"}, cfgChange) || !IsReleased(map[string]string{AnnotationRelease: string(cfgChange)}, cfgChange) ||
		IsReleased(map[string]string{AnnotationRelease: "ffff"}, cfgChange) || IsReleased(nil, cfgChange) {
		t.Fatal("IsReleased reads the annotation wrong")
	}
	held := func(released bool) PolicyInput {
		o := changedCfg(map[string]string{AnnotationPaused: "true"}, mustWaves(t, "1,100%"),
			ConsumerFacts{ID: id("canary"), Record: rolledFor(cfgChange, true), State: RolloutFailed}, ConsumerFacts{ID: id("web"), ConsumesChange: true})
		o.Released = released
		return PolicyInput{Now: policyNow, Workload: id("web"), Changed: []ChangedObject{o},
			Windows:     []WindowSource{{What: "ConfigMap/cfg", Windows: mustWindows(t, "Sun 00:00-00:01 UTC")}},
			MaxInflight: 1, Inflight: 1}
	}
	if h := Judge(held(false), Rules()); h.Reason != HoldPaused {
		t.Errorf("not released: %s, want paused", h.Reason)
	}
	if h := Judge(held(true), Rules()); h.Reason != HoldInflight {
		t.Errorf("released: %s, want only the in-flight cap to hold it", h.Reason)
	}
}
