package controller

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/reroll/reroll/pkg/metrics"
)

// observeSync records the duration of every sync by kind, the time of the
// last success, and failures by API error reason.
func TestObserveSync(t *testing.T) {
	reg := metrics.NewRegistry()
	m := newControllerMetrics(reg)
	key := deploymentKey("web")
	before := time.Now()
	m.observeSync(key, before, nil)
	m.observeSync(key, before, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("changed")))
	m.observeSync(key, before, errors.New("not an API error"))
	var b strings.Builder
	if err := reg.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		`reroll_sync_duration_seconds_count{kind="Deployment"} 3`,
		`reroll_sync_errors_total{reason="Conflict"} 1`,
		`reroll_sync_errors_total{reason="Unknown"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	var last float64
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "reroll_last_successful_sync_timestamp_seconds "); ok {
			if _, err := fmt.Sscan(v, &last); err != nil {
				t.Fatal(err)
			}
		}
	}
	if last < float64(before.Unix()) {
		t.Errorf("last successful sync at %v, before the sync at %v", last, before.Unix())
	}
}
