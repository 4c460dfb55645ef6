package controller

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"

	"github.com/reroll/reroll/pkg/metrics"
	"github.com/reroll/reroll/pkg/plan"
)

// Events beyond the burst are dropped and counted, never queued.
func TestRateLimitedRecorderDropsBeyondBurst(t *testing.T) {
	fake := events.NewFakeRecorder(10)
	reg := metrics.NewRegistry()
	// A rate so low that no token comes back during the test.
	rec := NewRateLimitedRecorder(fake, 1e-9, 2, reg)
	d := deployment("web", nil, nil)
	for range 5 {
		rec.Eventf(d, nil, corev1.EventTypeNormal, plan.ReasonRolled, "Roll", "Rolled: %s", "x")
	}
	if got := len(fake.Events); got != 2 {
		t.Errorf("%d Events passed, want the burst of 2", got)
	}
	var text strings.Builder
	if err := reg.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if want := `reroll_events_dropped_total{reason="Rolled"} 3`; !strings.Contains(text.String(), want) {
		t.Errorf("metrics lack %q:\n%s", want, text.String())
	}
}

// StartEvents sends Events through the events client until stopped.
func TestStartEvents(t *testing.T) {
	client := fake.NewClientset()
	rec, stop, err := StartEvents(context.Background(), client, 10, metrics.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	rec.Eventf(deployment("web", nil, nil), nil, corev1.EventTypeNormal, plan.ReasonRolled, "Roll", "Rolled: %s", "x")
	waitUntil(t, "the Event to be created", func() bool {
		list, err := client.EventsV1().Events(testNamespace).List(context.Background(), metav1.ListOptions{})
		return err == nil && len(list.Items) == 1 && list.Items[0].Reason == plan.ReasonRolled && list.Items[0].ReportingController == "reroll.dev/reroll"
	})
}
