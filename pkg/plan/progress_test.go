package plan

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// The rollout state of each kind, by the rules of kubectl rollout status.
func TestRolloutState(t *testing.T) {
	started := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const timeout = 10 * time.Minute
	dep := func(gen, observed int64, replicas, updated, available, total int32, reason string) RolloutStatus {
		d := &appsv1.Deployment{}
		d.Generation, d.Spec.Replicas = gen, ptr.To(replicas)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, AvailableReplicas: available, Replicas: total}
		if reason != "" {
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Reason: reason}}
		}
		return DeploymentStatus(d)
	}
	sts := func(strategy appsv1.StatefulSetUpdateStrategyType, gen, observed int64, update, current string, ready int32) RolloutStatus {
		s := &appsv1.StatefulSet{}
		s.Generation, s.Spec.Replicas = gen, ptr.To[int32](2)
		s.Spec.UpdateStrategy.Type = strategy
		s.Status = appsv1.StatefulSetStatus{ObservedGeneration: observed, UpdateRevision: update, CurrentRevision: current, ReadyReplicas: ready}
		return StatefulSetStatus(s)
	}
	ds := func(gen, observed int64, desired, updated, available int32) RolloutStatus {
		d := &appsv1.DaemonSet{}
		d.Generation = gen
		d.Status = appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberAvailable: available}
		return DaemonSetStatus(d)
	}
	custom := func(gen int64, observed *int64) RolloutStatus {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetGeneration(gen)
		if observed != nil {
			_ = unstructured.SetNestedField(u.Object, *observed, "status", "observedGeneration")
		}
		return CustomStatus(u)
	}
	tests := []struct {
		name    string
		status  RolloutStatus
		elapsed time.Duration
		want    RolloutState
	}{
		{"Deployment complete", dep(2, 2, 3, 3, 3, 3, "NewReplicaSetAvailable"), time.Hour, RolloutComplete},
		{"Deployment not observed yet", dep(3, 2, 3, 3, 3, 3, ""), 0, RolloutProgressing},
		{"Deployment with old pods left", dep(2, 2, 3, 3, 3, 4, ""), 0, RolloutProgressing},
		{"Deployment not available", dep(2, 2, 3, 3, 2, 3, ""), 0, RolloutProgressing},
		{"Deployment past its progress deadline", dep(2, 2, 3, 1, 0, 3, progressDeadlineExceeded), 0, RolloutFailed},
		{"Deployment deadline of an older spec", dep(3, 2, 3, 1, 0, 3, progressDeadlineExceeded), 0, RolloutProgressing},
		{"Deployment never times out", dep(2, 2, 3, 1, 0, 3, ""), 2 * timeout, RolloutProgressing},
		{"StatefulSet complete", sts(appsv1.RollingUpdateStatefulSetStrategyType, 2, 2, "r2", "r2", 2), 0, RolloutComplete},
		{"StatefulSet updating", sts(appsv1.RollingUpdateStatefulSetStrategyType, 2, 2, "r2", "r1", 2), 0, RolloutProgressing},
		{"StatefulSet not ready", sts(appsv1.RollingUpdateStatefulSetStrategyType, 2, 2, "r2", "r2", 1), 0, RolloutProgressing},
		{"StatefulSet past the timeout", sts(appsv1.RollingUpdateStatefulSetStrategyType, 2, 2, "r2", "r1", 2), timeout + time.Second, RolloutFailed},
		{"StatefulSet OnDelete", sts(appsv1.OnDeleteStatefulSetStrategyType, 2, 1, "r2", "r1", 0), 2 * timeout, RolloutComplete},
		{"DaemonSet complete", ds(2, 2, 3, 3, 3), 0, RolloutComplete},
		{"DaemonSet updating", ds(2, 2, 3, 2, 3), 0, RolloutProgressing},
		{"DaemonSet not observed", ds(2, 1, 3, 3, 3), 0, RolloutProgressing},
		{"DaemonSet past the timeout", ds(2, 2, 3, 2, 2), timeout + time.Second, RolloutFailed},
		{"custom kind observed", custom(4, ptr.To[int64](4)), 0, RolloutComplete},
		{"custom kind not observed", custom(4, ptr.To[int64](3)), 2 * timeout, RolloutProgressing},
		{"custom kind without observedGeneration", custom(4, nil), 0, RolloutComplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CalculateRolloutState(tt.status, started, started.Add(tt.elapsed), timeout); got != tt.want {
				t.Errorf("state = %v, want %v (status %+v)", got, tt.want, tt.status)
			}
		})
	}
	// A timed kind whose start is unknown (reroll did not roll it) never
	// fails by timeout.
	if got := CalculateRolloutState(sts(appsv1.RollingUpdateStatefulSetStrategyType, 2, 2, "r2", "r1", 2), time.Time{}, started, timeout); got != RolloutProgressing {
		t.Errorf("unknown start: %v", got)
	}
}

func TestRolloutRecordRoundTrip(t *testing.T) {
	r := RolloutRecord{Started: time.Unix(1764480000, 0), FromComplete: true, Changes: []ChangeID{"ConfigMap/a:0011", "Secret/b:2233"}}
	if got := r.String(); got != "v1;at=1764480000;from=complete;changes=ConfigMap/a:0011,Secret/b:2233" {
		t.Errorf("String() = %q", got)
	}
	back, err := ParseRolloutRecord(r.String())
	if err != nil || !back.Started.Equal(r.Started) || !back.FromComplete || !back.RolledFor("Secret/b:2233") || back.RolledFor("Secret/b:9999") {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	for _, bad := range []string{"", "v2;at=1;from=complete;changes=", "v1;at=x;from=complete;changes=", "v1;at=1;from=maybe;changes=", "v1;at=1;from=complete"} {
		if _, err := ParseRolloutRecord(bad); err == nil {
			t.Errorf("parseRolloutRecord(%q) accepted it", bad)
		}
	}
}

// A change's ID follows the object's whole content, is keyed, and differs
// between objects with the same content.
func TestCalculateChangeID(t *testing.T) {
	k1, k2 := testKey(t, 1), testKey(t, 2)
	cfg := ConfigRef{TypeConfigMap, "cfg"}
	a := map[string]string{"x": DigestValue("1"), "y": DigestValue("2")}
	b := map[string]string{"x": DigestValue("1"), "y": DigestValue("3")}
	if CalculateChangeID(k1, cfg, a) != CalculateChangeID(k1, cfg, map[string]string{"y": DigestValue("2"), "x": DigestValue("1")}) {
		t.Error("the ID depends on map order")
	}
	for _, other := range []ChangeID{CalculateChangeID(k1, cfg, b), CalculateChangeID(k2, cfg, a), CalculateChangeID(k1, ConfigRef{TypeSecret, "cfg"}, a)} {
		if other == CalculateChangeID(k1, cfg, a) {
			t.Errorf("IDs collide: %s", other)
		}
	}
}

// Custom kinds by the common status conventions, and Argo Rollouts by
// Argo's own status.
func TestCustomAndArgoStatus(t *testing.T) {
	obj := func(gen int64, status map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetGeneration(gen)
		if status != nil {
			u.Object["status"] = status
		}
		return u
	}
	cond := func(typ, status, reason string) map[string]any {
		return map[string]any{"type": typ, "status": status, "reason": reason}
	}
	conds := func(cs ...map[string]any) []any {
		out := make([]any, len(cs))
		for i, c := range cs {
			out[i] = c
		}
		return out
	}
	tests := []struct {
		name string
		got  RolloutStatus
		want RolloutState
	}{
		{"custom: no status at all", CustomStatus(obj(3, nil)), RolloutComplete},
		{"custom: observedGeneration behind", CustomStatus(obj(3, map[string]any{"observedGeneration": int64(2)})), RolloutProgressing},
		{"custom: observedGeneration reached", CustomStatus(obj(3, map[string]any{"observedGeneration": int64(3)})), RolloutComplete},
		{"custom: observedGeneration as a string, behind", CustomStatus(obj(3, map[string]any{"observedGeneration": "2"})), RolloutProgressing},
		{"custom: observedGeneration as a string, reached", CustomStatus(obj(3, map[string]any{"observedGeneration": "3"})), RolloutComplete},
		{"custom: Ready False", CustomStatus(obj(3, map[string]any{"observedGeneration": int64(3), "conditions": conds(cond("Ready", "False", "RevisionMissing"))})), RolloutProgressing},
		{"custom: Ready True", CustomStatus(obj(3, map[string]any{"observedGeneration": int64(3), "conditions": conds(cond("Ready", "True", ""))})), RolloutComplete},
		{"custom: Ready True of an older spec", CustomStatus(obj(4, map[string]any{"observedGeneration": int64(3), "conditions": conds(cond("Ready", "True", ""))})), RolloutProgressing},
		{"custom: Available without observedGeneration", CustomStatus(obj(3, map[string]any{"conditions": conds(cond("Available", "False", ""))})), RolloutProgressing},
		{"custom: Stalled", CustomStatus(obj(3, map[string]any{"observedGeneration": int64(3), "conditions": conds(cond("Ready", "False", ""), cond("Stalled", "True", ""))})), RolloutFailed},
		{"custom: Failed", CustomStatus(obj(3, map[string]any{"observedGeneration": int64(3), "conditions": conds(cond("Failed", "True", ""))})), RolloutFailed},
		{"custom: Degraded False is no failure", CustomStatus(obj(3, map[string]any{"observedGeneration": int64(3), "conditions": conds(cond("Degraded", "False", ""))})), RolloutComplete},
		{"argo: no status yet", ArgoRolloutStatus(obj(2, nil)), RolloutProgressing},
		{"argo: Healthy of an older spec", ArgoRolloutStatus(obj(2, map[string]any{"observedGeneration": "1", "phase": "Healthy"})), RolloutProgressing},
		{"argo: Healthy", ArgoRolloutStatus(obj(2, map[string]any{"observedGeneration": "2", "phase": "Healthy"})), RolloutComplete},
		{"argo: Paused on a canary step", ArgoRolloutStatus(obj(2, map[string]any{"observedGeneration": "2", "phase": "Paused"})), RolloutProgressing},
		{"argo: Progressing", ArgoRolloutStatus(obj(2, map[string]any{"observedGeneration": "2", "phase": "Progressing"})), RolloutProgressing},
		{"argo: Degraded", ArgoRolloutStatus(obj(2, map[string]any{"observedGeneration": "2", "phase": "Degraded"})), RolloutFailed},
		{"argo: aborted", ArgoRolloutStatus(obj(2, map[string]any{"observedGeneration": "2", "phase": "Degraded", "abort": true})), RolloutFailed},
		{"argo: progress deadline", ArgoRolloutStatus(obj(2, map[string]any{"observedGeneration": "2", "phase": "Progressing",
			"conditions": conds(cond("Progressing", "False", progressDeadlineExceeded))})), RolloutFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CalculateRolloutState(tt.got, time.Time{}, time.Now(), time.Minute); got != tt.want {
				t.Errorf("state %v (%+v), want %v", got, tt.got, tt.want)
			}
		})
	}
}

func TestCanFail(t *testing.T) {
	// Every status, with and without a start, at times before and after the
	// timeout, with and without one: CanFail holds whenever
	// CalculateRolloutState finds the rollout failed, and is false for a
	// status it never finds failed.
	start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for bits := range 16 {
		status := RolloutStatus{Observed: bits&1 != 0, Done: bits&2 != 0, DeadlineExceeded: bits&4 != 0, Timed: bits&8 != 0}
		failed := false
		for _, started := range []time.Time{{}, start} {
			for _, now := range []time.Time{start, start.Add(time.Hour)} {
				for _, timeout := range []time.Duration{0, time.Minute} {
					failed = failed || CalculateRolloutState(status, started, now, timeout) == RolloutFailed
				}
			}
		}
		if got := CanFail(status); got != failed {
			t.Errorf("CanFail(%+v) = %v, but CalculateRolloutState finds it failed: %v", status, got, failed)
		}
	}
}
