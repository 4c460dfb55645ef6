//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// annotationRolloutWindow says when the rolls of what carries it may start.
const annotationRolloutWindow = "reroll.dev/rollout-window"

// A ConfigMap whose rollout window opens a few seconds after its change
// rolls none of its consumers before the opening, with a restart of reroll
// in between, and each once after it.
func TestRolloutWindowOpensAfterTheChange(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	// The window starts at the first whole minute at least 15 s away.
	opens := time.Now().UTC().Add(15 * time.Second).Truncate(time.Minute).Add(time.Minute)
	window := fmt.Sprintf("%s %s-%s UTC", opens.Weekday().String()[:3], opens.Format("15:04"), opens.Add(30*time.Minute).Format("15:04"))
	if opens.Add(30*time.Minute).Day() != opens.Day() {
		window = fmt.Sprintf("%s %s-00:00 UTC", opens.Weekday().String()[:3], opens.Format("15:04")) // overnight: runs past midnight
	}
	cm := configMap(ns, "cfg", map[string]string{"k": "1"})
	cm.Annotations = map[string]string{annotationRolloutWindow: window}
	create(t, cm, testDeployment(ns, "a", auto(), envFrom("cfg")), testDeployment(ns, "b", auto(), envFrom("cfg")))
	r := startReroll(t, ns, "--kinds=deployments")
	waitAdopted(t, ns, "a")
	waitAdopted(t, ns, "b")
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	for _, n := range []string{"a", "b"} {
		waitEvent(t, ns, n, "RolloutHeld")
	}
	r.stop()
	r2 := startReroll(t, ns, "--kinds=deployments")
	r2.waitLog(2, "Roll held", `reason="window"`)
	if time.Now().After(opens) {
		t.Skipf("the machine took past the opening (%s) to get here; nothing to check", opens.Format(time.RFC3339))
	}
	for _, n := range []string{"a", "b"} {
		if d := getDeployment(t, ns, n); d.Spec.Template.Annotations[annotationConfigHash] != "" {
			t.Fatalf("%s rolled before its window opened at %s", n, opens.Format(time.RFC3339))
		}
	}
	waitForUpTo(t, "both to roll once the window opens", time.Until(opens)+waitTimeout, func(ctx context.Context) (bool, error) {
		return r2.countLog(`"Rolled"`) == 2, nil
	})
	if rolledAt := time.Now(); rolledAt.Before(opens) {
		t.Errorf("rolled at %s, before the opening %s", rolledAt.Format(time.RFC3339), opens.Format(time.RFC3339))
	}
	for _, n := range []string{"a", "b"} {
		lookAgain(t, r2, ns, n)
		if got := r.countLog(`"Rolled"`) + r2.countLog(`"Rolled"`, `workload="`+ns+"/"+n+`"`); got != 1 {
			t.Errorf("%s rolled %d times, want once", n, got)
		}
	}
}

// opening is one opening of a rollout window, from start (inclusive) to end
// (exclusive), on whole minutes.
type opening struct{ start, end time.Time }

// String formats o as an item of reroll.dev/rollout-window, in UTC; an
// opening across midnight is an overnight range ("Fri 23:59-00:01 UTC"),
// which the syntax reads as running into the next day.
func (o opening) String() string {
	return fmt.Sprintf("%s %s-%s UTC", o.start.Weekday().String()[:3], o.start.Format("15:04"), o.end.Format("15:04"))
}

// contains reports whether t falls in o.
func (o opening) contains(t time.Time) bool { return !t.Before(o.start) && t.Before(o.end) }

// eventNotes returns the notes of the Events with reason regarding an
// object.
func eventNotes(t *testing.T, ns, name, reason string) []string {
	t.Helper()
	list, err := testEnv.client.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

// TestWaveAcrossTwoWindows: a ConfigMap rolled in waves ("1,100%") whose
// rollout window is two short openings a closed minute apart. The first
// wave, a canary, rolls in the first opening, but its rollout cannot
// complete there: its new Pod cannot be scheduled until the test lets it,
// once that opening has closed. So the next wave is left unfinished by the
// first opening; in the closed minute it is held by the window (no longer
// by its wave), with an Event naming the second opening, and it rolls in
// that opening. Every roll starts inside an opening, and each consumer
// rolls once. Windows are minute-grained, so it takes 1.7 to 2.7 minutes,
// by where in its minute the change falls (about 2 in three runs of three).
func TestWaveAcrossTwoWindows(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	run := startStuckCanary(t, ns, "v", 4, "1,100%", 0, "--kinds=deployments")
	names, label, b, r, rolls := run.names, run.label, run.barrier, run.reroll, run.rolls

	// The first opening runs from this minute to the first whole minute at
	// least 20 s away, time enough for the canary to roll in it; the second
	// opens a minute after it closed.
	now := time.Now().UTC()
	first := opening{now.Truncate(time.Minute), now.Add(20 * time.Second).Truncate(time.Minute).Add(time.Minute)}
	second := opening{first.end.Add(time.Minute), first.end.Add(2 * time.Minute)}
	window := first.String() + "; " + second.String()
	t.Logf("%s: %q", annotationRolloutWindow, window)
	updateConfigMap(t, ns, "shared", func(cm *corev1.ConfigMap) {
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[annotationRolloutWindow] = window
		cm.Data["k"] = "1"
	})
	rolls.waitTotal(names[0], 1)
	waitForUpTo(t, "the first opening to close", time.Until(first.end)+waitTimeout, func(context.Context) (bool, error) {
		return !time.Now().Before(first.end), nil
	})
	if got := rolls.rolledNames("v-"); !slices.Equal(got, names[:1]) {
		t.Fatalf("in the first opening rolled %q, want only the canary %s", got, names[0])
	}

	// The canary completes in the closed minute: its wave is done, and only
	// the window holds the next.
	labelNode(t, label, "ok")
	waitComplete(t, ns, names[0])
	completed := time.Now()
	heldByWindow := func(name string) bool {
		return r.countLog(`"Roll held"`, `reason="window"`, `kind="Deployment"`, `workload="`+ns+"/"+name+`"`) > 0
	}
	waitForUpTo(t, "the next wave to be held by the window, or to roll", time.Until(second.start)+waitTimeout, func(context.Context) (bool, error) {
		return len(rolls.rolledNames("v-")) > 1 || !slices.ContainsFunc(names[1:], func(n string) bool { return !heldByWindow(n) }), nil
	})
	if got := rolls.rolledNames("v-"); !slices.Equal(got, names[:1]) && time.Now().Before(second.start) {
		t.Fatalf("in the closed minute rolled %q, want still only the canary %s", got, names[0])
	}
	if second.start.Sub(completed) < 10*time.Second {
		t.Skipf("the canary's rollout completed at %s, too close to the second opening (%s) to see the window hold the next wave",
			completed.UTC().Format(time.RFC3339), second.start.Format(time.RFC3339))
	}
	rolls.waitTotalUpTo("v-", len(names), time.Until(second.start)+waitTimeout)
	b.wait()
	rolls.expectEachOnce(names)
	for _, n := range names {
		for i := range rolls.count(n) {
			at := rolls.at(n, i)
			if !first.contains(at) && !second.contains(at) {
				t.Errorf("%s rolled at %s, outside both openings (%q)", n, at.UTC().Format(time.RFC3339Nano), window)
			}
		}
	}
	if at := rolls.at(names[0], 0); !first.contains(at) {
		t.Errorf("the first wave (%s) rolled at %s, not in the first opening", names[0], at.UTC().Format(time.RFC3339Nano))
	}
	for _, n := range names[1:] {
		if !heldByWindow(n) {
			t.Errorf("%s was never held by the window", n)
		}
		opens := "rolling when it opens, at " + second.start.Format(time.RFC3339)
		if notes := eventNotes(t, ns, n, "RolloutHeld"); !slices.ContainsFunc(notes, func(note string) bool { return strings.Contains(note, opens) }) {
			t.Errorf("no RolloutHeld Event of %s says %q; they say %q", n, opens, notes)
		}
		if rolls.count(n) > 0 && !second.contains(rolls.at(n, 0)) {
			t.Errorf("%s of the second wave rolled at %s, not in the second opening", n, rolls.at(n, 0).UTC().Format(time.RFC3339Nano))
		}
	}
	t.Logf("first opening %s, canary rolled %s after the change, completed %s before the second opening; the rest rolled %v into it",
		strings.TrimSuffix(first.String(), " UTC"), rolls.at(names[0], 0).Sub(now).Round(time.Millisecond),
		second.start.Sub(completed).Round(time.Second), rolls.times("v-")[len(names)-1].Sub(second.start).Round(time.Millisecond))
}
