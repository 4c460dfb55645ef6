package plan

import (
	"strings"
	"testing"
	"time"
)

// JudgeRollout turns a rolled workload's status, pods and reroll's memory,
// over time, into progressing, baking, complete or failed.
func TestJudgeRollout(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	done := RolloutStatus{Observed: true, Done: true}
	doneAt := func(completed, available int) RolloutStatus {
		s := done
		s.CompletedAt, s.AvailableSince = at(completed), at(available)
		return s
	}
	notDone := RolloutStatus{Observed: true}
	tests := []struct {
		name  string
		facts RolloutFacts
		now   time.Time
		want  RolloutState
		until time.Time
		why   string
	}{
		{"no bake: complete at once", RolloutFacts{Status: done, Started: t0}, at(1), RolloutComplete, time.Time{}, ""},
		{"not rolled by reroll: no bake", RolloutFacts{Status: done, Bake: time.Minute}, at(1), RolloutComplete, time.Time{}, ""},
		{"rolling", RolloutFacts{Status: notDone, Started: t0, Bake: time.Minute}, at(5), RolloutProgressing, time.Time{}, ""},
		{"deadline exceeded", RolloutFacts{Status: RolloutStatus{Observed: true, DeadlineExceeded: true}, Started: t0, Bake: time.Minute},
			at(5), RolloutFailed, time.Time{}, "its rollout failed"},
		{"baking from the completion", RolloutFacts{Status: doneAt(10, 9), Started: t0, Bake: time.Minute}, at(40), RolloutBaking, at(70), "fully available for 30s of its 1m0s bake"},
		{"baked", RolloutFacts{Status: doneAt(10, 9), Started: t0, Bake: time.Minute}, at(70), RolloutComplete, time.Time{}, ""},
		{"available again later: the bake starts again", RolloutFacts{Status: doneAt(10, 50), Started: t0, Bake: time.Minute}, at(70), RolloutBaking, at(110), ""},
		{"pods ready later", RolloutFacts{Status: doneAt(10, 9), Started: t0, Bake: time.Minute, Pods: &PodHealth{Pods: 2, ReadySince: at(20)}},
			at(70), RolloutBaking, at(80), ""},
		{"no times in the status: from the roll", RolloutFacts{Status: done, Started: t0, Bake: time.Minute}, at(30), RolloutBaking, at(60), ""},
		{"reroll's memory only lengthens it", RolloutFacts{Status: doneAt(10, 9), Started: t0, Bake: time.Minute, FirstComplete: at(30)},
			at(70), RolloutBaking, at(90), ""},
		{"a restart of a new pod fails it", RolloutFacts{Status: doneAt(10, 9), Started: t0, Bake: time.Minute,
			Pods: &PodHealth{Pods: 1, Restarts: 3, RestartedPods: []string{"web-1"}, Since: at(2), LastRestart: at(42)}},
			at(45), RolloutFailed, at(102), "restarted 3 times in 40s (pods web-1)"},
		{"a crash loop fails it as long as it lasts", RolloutFacts{Status: doneAt(10, 9), Started: t0, Bake: time.Minute,
			Pods: &PodHealth{Pods: 2, Restarts: 1, RestartedPods: []string{"web-2"}, Since: at(2), LastRestart: at(12), CrashLooping: []string{"web-2", "web-1"}}},
			at(500), RolloutFailed, at(560), "CrashLoopBackOff (pods web-1, web-2)"},
		{"a container that exited and has not restarted yet fails it", RolloutFacts{Status: RolloutStatus{Observed: true, CompletedAt: at(10)}, Started: t0, Bake: time.Minute,
			Pods: &PodHealth{Pods: 1, Since: at(2), Exits: []ContainerExit{{Pod: "web-1", Container: "app", ExitCode: 1, Reason: "Error", At: at(12)}}}},
			at(13), RolloutFailed, at(73), "container web-1/app exited with code 1, Error; no longer fully available after its rollout completed"},
		{"an exit before the roll is not this roll's", RolloutFacts{Status: doneAt(10, 9), Started: t0, Bake: time.Minute,
			Pods: &PodHealth{Pods: 1, Exits: []ContainerExit{{Pod: "web-1", Container: "app", At: at(-5)}}}}, at(75), RolloutComplete, time.Time{}, ""},
		{"recovered after a whole bake without a sign", RolloutFacts{Status: doneAt(10, 50), Started: t0, Bake: time.Minute,
			Pods: &PodHealth{Pods: 1, Restarts: 1, RestartedPods: []string{"web-1"}, Since: at(2), LastRestart: at(45), ReadySince: at(50)}},
			at(106), RolloutComplete, time.Time{}, ""},
		{"a restart before the roll is not this roll's", RolloutFacts{Status: doneAt(10, 9), Started: t0, Bake: time.Minute,
			Pods: &PodHealth{Pods: 1, Restarts: 2, RestartedPods: []string{"web-1"}, LastRestart: at(-5)}}, at(75), RolloutComplete, time.Time{}, ""},
		{"not fully available after it completed, inside the bake", RolloutFacts{Status: RolloutStatus{Observed: true, CompletedAt: at(10)}, Started: t0, Bake: time.Minute},
			at(30), RolloutFailed, at(90), "no longer fully available after its rollout completed"},
		{"not fully available long after the bake: progressing", RolloutFacts{Status: RolloutStatus{Observed: true, CompletedAt: at(10)}, Started: t0, Bake: time.Minute},
			at(300), RolloutProgressing, time.Time{}, ""},
		{"a dip reroll saw keeps it failed while it flaps", RolloutFacts{Status: doneAt(10, 48), Started: t0, Bake: time.Minute, FirstComplete: at(11), LastDip: at(45)},
			at(60), RolloutFailed, at(105), "was not fully available at"},
		{"a dip a whole bake ago: recovered", RolloutFacts{Status: doneAt(10, 48), Started: t0, Bake: time.Minute, FirstComplete: at(11), LastDip: at(45)},
			at(110), RolloutComplete, time.Time{}, ""},
		{"timed out (StatefulSet)", RolloutFacts{Status: RolloutStatus{Observed: true, Timed: true}, Started: t0, Timeout: time.Minute, Bake: time.Minute},
			at(61), RolloutFailed, time.Time{}, "its rollout failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := JudgeRollout(tt.facts, tt.now)
			if got.State != tt.want || !got.Until.Equal(tt.until) || !strings.Contains(got.Why, tt.why) {
				t.Errorf("JudgeRollout = %v until %v (%q), want %v until %v (%q)", got.State, got.Until, got.Why, tt.want, tt.until, tt.why)
			}
		})
	}
}

func TestBakeTimeOf(t *testing.T) {
	tests := []struct {
		workload, object map[string]string
		want             time.Duration
		err              bool
	}{
		{nil, nil, 30 * time.Second, false},
		{nil, map[string]string{AnnotationBakeTime: "2m"}, 2 * time.Minute, false},
		{map[string]string{AnnotationBakeTime: "0s"}, map[string]string{AnnotationBakeTime: "2m"}, 0, false},
		{map[string]string{AnnotationBakeTime: "soon"}, nil, 30 * time.Second, true},
		{nil, map[string]string{AnnotationBakeTime: "-1s"}, 30 * time.Second, true},
	}
	for _, tt := range tests {
		got, err := BakeTimeOf(tt.workload, tt.object, 30*time.Second)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("BakeTimeOf(%v, %v) = %v, %v; want %v, error %v", tt.workload, tt.object, got, err, tt.want, tt.err)
		}
	}
}
