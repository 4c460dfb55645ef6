package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The rollout-safety policies, as pure rules. The controller gathers, once
// per planned roll, every fact the rules read into a PolicyInput (its
// caches, its in-memory pacing and flap history); Judge then asks the rules
// in order and returns the first hold. Each rule is a function of its input
// alone, in the way cert-manager separates gathering from its policy chain,
// so each is tested with a table and no controller.
//
// A held roll writes nothing; the workload is synced again when the hold can
// end (after Hold.Wait, or when an event says so), and that sync rolls once,
// to the content current at that moment. In the order they are asked:
//
//   - PauseRule: reroll.dev/paused on the workload, its Namespace or a
//     changed ConfigMap or Secret; ends when the annotation goes.
//   - WindowRule: the roll is outside a rollout window of the workload, a
//     changed object or its Namespace (or --rollout-window); ends when they
//     all open.
//   - HaltRule: a consumer that reroll rolled for the same change (object and
//     content) failed, when its previous rollout had completed, or failed
//     inside its bake (JudgeRollout); ends when it recovers or the object
//     changes again. Derived from the consumers' rollout records, statuses
//     and pods, so it survives restarts.
//   - WaveRule: the change rolls its consumers in waves, and an earlier wave
//     has not completed and baked; ends when it has.
//   - FlapRule: the workload rolled too often (--max-rolls-per-workload).
//   - InflightRule: too many rollouts are incomplete (--max-inflight-rollouts).
//   - PacingRule: rolls are spaced over all workloads
//     (--max-rollouts-per-second).

// HoldReason is why a planned roll waits; it labels
// reroll_rollouts_held{reason}.
type HoldReason string

const (
	HoldPaused    HoldReason = "paused"
	HoldWindow    HoldReason = "window"
	HoldHalted    HoldReason = "halted"
	HoldWave      HoldReason = "wave"
	HoldThrottled HoldReason = "throttled"
	HoldInflight  HoldReason = "inflight"
	HoldPaced     HoldReason = "paced"
	// HoldInvalid: a policy annotation is malformed; reported as a Warning
	// InvalidAnnotation and held until it is fixed, never rolled at once.
	HoldInvalid HoldReason = "invalid"
)

// HoldReasons lists every HoldReason, for the metric.
func HoldReasons() []HoldReason {
	return []HoldReason{HoldPaused, HoldWindow, HoldHalted, HoldWave, HoldThrottled, HoldInflight, HoldPaced, HoldInvalid}
}

// PolicyRecheck is how often a roll held by a halt, a wave or the in-flight
// cap is looked at again even without an event: kinds whose failure is a
// timeout fail without one.
const PolicyRecheck = 30 * time.Second

// WorkloadID names a workload in the rules and their messages.
type WorkloadID struct {
	// Kind is the controller's name of the kind, such as "Deployment" or
	// "Rollout.argoproj.io".
	Kind, Namespace, Name string
}

// String returns "Deployment ns/name", as logs and Events name workloads.
func (id WorkloadID) String() string {
	return id.Kind + " " + id.Namespace + "/" + id.Name
}

// Hold is why, and for how long, a planned roll waits. The zero Hold holds
// nothing.
type Hold struct {
	Reason HoldReason
	// Wait is when to sync the workload again; zero waits for an event.
	Wait time.Duration
	// Message says why, naming objects and workloads, never values.
	Message string
	// Failed is, for a halt, the consumer whose rollout failed, Change the
	// change it halts, and Why why it failed, if known.
	Failed WorkloadID
	Change ChangeID
	Why    string
}

// PolicyInput is every fact the rules read about one planned roll.
type PolicyInput struct {
	// Now is when the facts were gathered.
	Now time.Time
	// Workload is the workload to roll, with its annotations, and those of
	// its Namespace.
	Workload             WorkloadID
	WorkloadAnnotations  map[string]string
	NamespaceAnnotations map[string]string
	// Changed are the consumed objects whose change the roll carries.
	Changed []ChangedObject

	// Windows are the rollout windows the roll needs open, each with what
	// set it.
	Windows []WindowSource

	// RollLimit is --max-rolls-per-workload, and RecentRolls when reroll
	// rolled the workload, oldest first, as far as it remembers.
	RollLimit   RollLimit
	RecentRolls []time.Time
	// MaxInflight is --max-inflight-rollouts; Inflight is how many rollouts
	// are incomplete, and SelfInflight whether the workload's is one of them.
	MaxInflight  int
	Inflight     int
	SelfInflight bool
	// MaxRolloutsPerSecond is --max-rollouts-per-second, and PaceSlot the
	// earliest time that pacing lets the workload roll: its own slot, or the
	// next free one; zero without pacing.
	MaxRolloutsPerSecond float64
	PaceSlot             time.Time
}

// ChangedObject is a consumed ConfigMap or Secret whose change a planned
// roll carries, with what the rules need to know of it and of its consumers.
type ChangedObject struct {
	Ref    ConfigRef
	Change ChangeID
	// Annotations are the object's own (pause, waves).
	Annotations map[string]string
	// Waves are its waves (WavesOf), nil for all at once; WavesError says
	// why they cannot be read.
	Waves      []WaveStep
	WavesError error
	// BakeError says why its bake time (AnnotationBakeTime) cannot be read.
	BakeError error
	// Consumers are the opted-in workloads that consume the object, the
	// workload to roll included; for an object without waves, only those
	// whose rollout can fail (CanFail), the only ones HaltRule reads.
	Consumers []ConsumerFacts
	// Released: the object's reroll.dev/release names this change, which an
	// operator let through its pause, window, waves and halt.
	Released bool
}

// AnnotationRelease on a ConfigMap or Secret lets one change of it through
// the holds an operator or the cluster set (pause, window, waves, halt):
// its value is the change's digest, the part after ":" of the change
// reroll names in its Events ("ConfigMap/cfg:1a2b3c4d5e6f7a8b"). A later
// change of the object is held again; pacing, the in-flight cap and the
// flap breaker, which protect the API server, still apply.
const AnnotationRelease = "reroll.dev/release"

// IsReleased reports whether an object with annotations releases change c.
func IsReleased(annotations map[string]string, c ChangeID) bool {
	v, ok := annotations[AnnotationRelease]
	_, digest, _ := strings.Cut(string(c), ":")
	return ok && v != "" && (v == digest || v == string(c))
}

// released reports whether every change a roll carries is released.
func released(in PolicyInput) bool {
	for _, o := range in.Changed {
		if !o.Released {
			return false
		}
	}
	return len(in.Changed) > 0
}

// unlessReleased returns rule, except for a released roll.
func unlessReleased(rule Rule) Rule {
	return func(in PolicyInput) Hold {
		if released(in) {
			return Hold{}
		}
		return rule(in)
	}
}

// ConsumerFacts is what the rules know of one consumer of a changed object.
type ConsumerFacts struct {
	ID WorkloadID
	// Record is the rollout reroll last started on it; nil when it has none
	// that can be read.
	Record *RolloutRecord
	// State is where its current rollout stands (CalculateRolloutState, with
	// the record's start).
	State RolloutState
	// ConsumesChange: the content of the object it consumes differs from
	// what it recorded, so the change rolls it. Gathered only for objects
	// with waves.
	ConsumesChange bool
	// Priority is its reroll.dev/wave-priority, and PriorityError why it
	// cannot be read. Gathered only for objects with waves.
	Priority      int
	PriorityError error
	// Until is when a baking rollout's bake ends, or when a failed one can
	// count as recovered; Why says why it failed (JudgeRollout).
	Until time.Time
	Why   string
	// BakeError says why its own bake time (AnnotationBakeTime) cannot be
	// read.
	BakeError error
}

// Rule judges one policy: the zero Hold lets the roll go on to the next.
type Rule func(PolicyInput) Hold

// Rules returns the rollout-safety rules in the order Judge asks them: the
// holds an operator sets first, then those derived from the cluster, then
// those that spread rolls over time. A released change (AnnotationRelease)
// passes the first four.
func Rules() []Rule {
	return []Rule{unlessReleased(PauseRule), unlessReleased(WindowRule), unlessReleased(HaltRule), unlessReleased(WaveRule),
		FlapRule, InflightRule, PacingRule}
}

// Judge returns the first hold of rules on in, or the zero Hold.
func Judge(in PolicyInput, rules []Rule) Hold {
	for _, rule := range rules {
		if h := rule(in); h.Reason != "" {
			return h
		}
	}
	return Hold{}
}

// PauseRule holds a roll while the workload, its Namespace or a changed
// object is paused. A value other than "true" or "false" holds too, as
// malformed.
func PauseRule(in PolicyInput) Hold {
	if h := pauseHold(in.WorkloadAnnotations, "the workload"); h.Reason != "" {
		return h
	}
	if h := pauseHold(in.NamespaceAnnotations, "its namespace"); h.Reason != "" {
		return h
	}
	for _, o := range in.Changed {
		if h := pauseHold(o.Annotations, o.Ref.String()); h.Reason != "" {
			return h
		}
	}
	return Hold{}
}

// pauseHold is the hold the pause annotation among annotations, on what,
// makes.
func pauseHold(annotations map[string]string, what string) Hold {
	switch v, ok := annotations[AnnotationPaused]; {
	case !ok || v == "false":
		return Hold{}
	case v == "true":
		return Hold{Reason: HoldPaused, Message: what + " is paused (" + AnnotationPaused + "); rolling once it is not"}
	default:
		return Hold{Reason: HoldInvalid, Message: fmt.Sprintf("%s has %s=%q; only \"true\" or \"false\" are valid; not rolling until it is fixed", what, AnnotationPaused, v)}
	}
}

// WindowSource is a rollout window and what set it (for messages); Err
// says why it cannot be read.
type WindowSource struct {
	What    string
	Windows Windows
	Err     error
}

// WindowsOf returns the rollout windows a roll judged on in needs open:
// those the workload, its Namespace and each changed object set in
// reroll.dev/rollout-window, or, when none sets one, defaults
// (--rollout-window).
func WindowsOf(in PolicyInput, defaults Windows) []WindowSource {
	var out []WindowSource
	add := func(what string, annotations map[string]string) {
		if v, ok := annotations[AnnotationRolloutWindow]; ok {
			ws, err := ParseWindows(v)
			out = append(out, WindowSource{What: what, Windows: ws, Err: err})
		}
	}
	add("the workload", in.WorkloadAnnotations)
	add("its namespace", in.NamespaceAnnotations)
	for _, o := range in.Changed {
		add(o.Ref.String(), o.Annotations)
	}
	if len(out) == 0 && defaults != nil {
		out = append(out, WindowSource{What: "--rollout-window", Windows: defaults})
	}
	return out
}

// WindowRule holds a roll while any of its rollout windows is closed, until
// the first minute they are all open; a malformed window holds it as
// invalid.
func WindowRule(in PolicyInput) Hold {
	var sets []Windows
	var what []string
	for _, s := range in.Windows {
		if s.Err != nil {
			return Hold{Reason: HoldInvalid, Message: fmt.Sprintf("%s has %s: %v; not rolling until it is fixed", s.What, AnnotationRolloutWindow, s.Err)}
		}
		sets, what = append(sets, s.Windows), append(what, s.What)
	}
	if AllOpen(sets, in.Now) {
		return Hold{}
	}
	next, ok := NextOpening(sets, in.Now)
	if !ok {
		return Hold{Reason: HoldWindow, Wait: PolicyRecheck, Message: fmt.Sprintf(
			"the rollout windows of %s are never open together within eight days; not rolling", joinAnd(what))}
	}
	return Hold{Reason: HoldWindow, Wait: next.Sub(in.Now), Message: fmt.Sprintf(
		"outside the rollout window of %s; rolling when it opens, at %s", joinAnd(what), next.UTC().Format(time.RFC3339))}
}

// HaltRule holds a roll while another consumer that reroll rolled for the
// same change failed, after a complete rollout: the change is bad.
func HaltRule(in PolicyInput) Hold {
	for _, o := range in.Changed {
		for _, m := range o.Consumers {
			if m.ID == in.Workload || m.Record == nil {
				continue
			}
			if m.Record.FromComplete && m.Record.RolledFor(o.Change) && m.State == RolloutFailed {
				why := ""
				if m.Why != "" {
					why = " (" + m.Why + ")"
				}
				return Hold{Reason: HoldHalted, Failed: m.ID, Change: o.Change, Why: m.Why, Wait: recheckAt(in.Now, m.Until),
					Message: fmt.Sprintf("the rollout of %s, rolled for the same change of %s, failed%s; not rolling until it recovers (a whole bake without a failure) or %s changes again", m.ID, o.Ref, why, o.Ref)}
			}
		}
	}
	return Hold{}
}

// WaveRule holds a roll whose changes all roll in waves and none of whose
// waves has come. A workload that several changes roll belongs to the
// earliest wave any of them gives it.
func WaveRule(in PolicyInput) Hold {
	var waiting []string
	var bakedAt time.Time
	for _, o := range in.Changed {
		if o.BakeError != nil {
			return Hold{Reason: HoldInvalid, Message: fmt.Sprintf("%s: %v; not rolling until it is fixed", o.Ref, o.BakeError)}
		}
		if o.WavesError != nil {
			return Hold{Reason: HoldInvalid, Message: fmt.Sprintf("%s has %s: %v; not rolling until it is fixed", o.Ref, AnnotationWaves, o.WavesError)}
		}
		if o.Waves == nil {
			return Hold{} // this change rolls every consumer at once
		}
		members, sizes, err := waveOrder(o)
		if err != nil {
			return Hold{Reason: HoldInvalid, Message: err.Error() + "; not rolling until it is fixed"}
		}
		pending := CalculateWaveTurn(members, in.Workload, sizes, func(m ConsumerFacts) bool {
			return m.Record != nil && m.Record.RolledFor(o.Change) && m.State == RolloutComplete
		})
		if len(pending) == 0 {
			return Hold{}
		}
		baking := 0
		for _, m := range pending {
			if m.State == RolloutBaking && m.Record != nil && m.Record.RolledFor(o.Change) {
				baking++
				bakedAt = latest(bakedAt, m.Until)
			}
		}
		w := fmt.Sprintf("%d of the earlier wave(s) of %s", len(pending), o.Ref)
		if baking > 0 {
			w += fmt.Sprintf(" (%d of them baking)", baking)
		}
		waiting = append(waiting, w)
	}
	if len(waiting) == 0 {
		return Hold{}
	}
	msg := "waiting for " + joinAnd(waiting) + " to roll, complete and bake"
	if !bakedAt.IsZero() {
		msg += fmt.Sprintf("; the bake ends in %v at the earliest", bakedAt.Sub(in.Now).Round(time.Second))
	}
	return Hold{Reason: HoldWave, Wait: recheckAt(in.Now, bakedAt), Message: msg}
}

// recheckAt returns when a roll held until a time, at, is looked at again:
// at then, or after PolicyRecheck, whichever comes first (zero at: after
// PolicyRecheck). An event can wake it sooner.
func recheckAt(now, at time.Time) time.Duration {
	if d := at.Sub(now); !at.IsZero() && d > 0 && d < PolicyRecheck {
		return d
	}
	return PolicyRecheck
}

// waveMembers returns the consumers change o rolls, or has rolled, in wave
// order (SortWaveMembers): those reroll rolled for the change, and those
// whose consumed content of o differs from what they recorded.
func waveMembers(o ChangedObject) ([]ConsumerFacts, error) {
	var members []ConsumerFacts
	for _, m := range o.Consumers {
		if m.PriorityError != nil {
			return nil, fmt.Errorf("%s: %v", m.ID, m.PriorityError)
		}
		if m.BakeError != nil {
			return nil, fmt.Errorf("%s: %v", m.ID, m.BakeError)
		}
		if (m.Record != nil && m.Record.RolledFor(o.Change)) || m.ConsumesChange {
			members = append(members, m)
		}
	}
	SortWaveMembers(members, func(m ConsumerFacts) (WorkloadID, int) { return m.ID, m.Priority })
	return members, nil
}

// waveOrder returns the members of change o's waves in wave order, and
// the cumulative wave sizes.
func waveOrder(o ChangedObject) ([]ConsumerFacts, []int, error) {
	members, err := waveMembers(o)
	if err != nil {
		return nil, nil, err
	}
	return members, CalculateWaveSizes(o.Waves, len(members)), nil
}

// WaveOfMember returns the wave (1 first) in which change o rolls workload
// id, as WaveRule orders them, or 0 when o has no waves or does not roll
// id. The kubectl plugin numbers waves with it.
func WaveOfMember(o ChangedObject, id WorkloadID) int {
	if o.Waves == nil || o.WavesError != nil {
		return 0
	}
	members, sizes, err := waveOrder(o)
	if err != nil {
		return 0
	}
	pos := slices.IndexFunc(members, func(m ConsumerFacts) bool { return m.ID == id })
	if pos < 0 {
		return 0
	}
	return WaveOf(pos, sizes) + 1
}

// SortWaveMembers sorts the members of a change's waves into wave order:
// reroll.dev/wave-priority (lower first), then namespace, name and kind. of
// returns a member's workload and priority. The controller and the plugin
// both order waves with it.
func SortWaveMembers[M any](members []M, of func(M) (WorkloadID, int)) {
	slices.SortStableFunc(members, func(a, b M) int {
		ia, pa := of(a)
		ib, pb := of(b)
		return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(ia.Namespace, ib.Namespace),
			cmp.Compare(ia.Name, ib.Name), cmp.Compare(ia.Kind, ib.Kind))
	})
}

// CalculateWaveTurn returns the members of the waves before id's, among
// members in wave order with cumulative wave sizes, that are not done: id's
// wave has come when there are none.
func CalculateWaveTurn(members []ConsumerFacts, id WorkloadID, sizes []int, done func(ConsumerFacts) bool) (pending []ConsumerFacts) {
	pos := slices.IndexFunc(members, func(m ConsumerFacts) bool { return m.ID == id })
	if pos < 0 {
		return nil // not a member: the change does not roll it
	}
	wave := WaveOf(pos, sizes)
	if wave == 0 {
		return nil
	}
	for _, m := range members[:sizes[wave-1]] {
		if !done(m) {
			pending = append(pending, m)
		}
	}
	return pending
}

// FlapRule holds a workload that rolled RollLimit.N times within
// RollLimit.Window, until the oldest of those rolls leaves the window.
func FlapRule(in PolicyInput) Hold {
	wait := calculateFlapWait(in.RecentRolls, in.RollLimit, in.Now)
	if wait <= 0 {
		return Hold{}
	}
	return Hold{Reason: HoldThrottled, Wait: wait, Message: fmt.Sprintf(
		"rolled %d times within %v (--max-rolls-per-workload); rolling once more, to the content current then, in %v",
		in.RollLimit.N, in.RollLimit.Window, wait.Round(time.Millisecond))}
}

// calculateFlapWait returns how long a workload that rolled at rolls
// (oldest first) must wait before rolling again under limit; zero when it
// may roll now.
func calculateFlapWait(rolls []time.Time, limit RollLimit, now time.Time) time.Duration {
	if limit.N == 0 {
		return 0
	}
	var recent []time.Time
	for _, t := range rolls {
		if t.Add(limit.Window).After(now) {
			recent = append(recent, t)
		}
	}
	if len(recent) < limit.N {
		return 0
	}
	return recent[len(recent)-limit.N].Add(limit.Window).Sub(now)
}

// InflightRule holds a roll while MaxInflight rollouts are incomplete,
// unless the workload's own is one of them (rolling it again adds none).
func InflightRule(in PolicyInput) Hold {
	if in.MaxInflight <= 0 || in.SelfInflight || in.Inflight < in.MaxInflight {
		return Hold{}
	}
	return InflightHold(in.MaxInflight)
}

// InflightHold is the hold of a roll that the in-flight cap of max stops.
func InflightHold(max int) Hold {
	return Hold{Reason: HoldInflight, Wait: PolicyRecheck, Message: fmt.Sprintf(
		"%d rollouts are incomplete, the most --max-inflight-rollouts allows", max)}
}

// PacingRule holds a roll until its pacing slot.
func PacingRule(in PolicyInput) Hold {
	if !in.PaceSlot.After(in.Now) {
		return Hold{}
	}
	return PacedHold(in.PaceSlot.Sub(in.Now), in.MaxRolloutsPerSecond)
}

// PacedHold is the hold of a roll that pacing at qps rolls per second lets
// roll in wait.
func PacedHold(wait time.Duration, qps float64) Hold {
	return Hold{Reason: HoldPaced, Wait: wait, Message: fmt.Sprintf(
		"rolls are spaced to %v per second (--max-rollouts-per-second); rolling in %v", qps, wait.Round(time.Millisecond))}
}

// RolloutRecordFor returns the record a roll judged on in writes: when it
// rolled, whether the workload's previous rollout was complete, and the
// changes it carries, sorted.
func RolloutRecordFor(in PolicyInput, previous RolloutState) RolloutRecord {
	r := RolloutRecord{Started: in.Now, FromComplete: previous == RolloutComplete}
	for _, o := range in.Changed {
		r.Changes = append(r.Changes, o.Change)
	}
	slices.Sort(r.Changes)
	return r
}

// joinAnd joins items as "a, b and c".
func joinAnd(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
