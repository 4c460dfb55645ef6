package plan

import (
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The progress of custom kinds, read from the status conventions most
// controllers follow (Kubernetes' API conventions, kstatus), and of Argo
// Rollouts, read from Argo's own status.

// CustomStatus is the RolloutStatus of a custom resource, judged by the
// common status conventions:
//   - status.observedGeneration, an integer or a string (Argo writes a
//     string), at least metadata.generation: its controller has seen the
//     spec reroll's patch made;
//   - a Ready or an Available condition: done when it is "True";
//   - a Stalled, Failed or Degraded condition that is "True": failed.
//
// A kind that reports none of them counts as complete at once, since reroll
// cannot know more of a kind it does not know; one that reports only an
// observedGeneration is complete once that reaches its generation.
func CustomStatus(u *unstructured.Unstructured) RolloutStatus {
	og, hasOG := observedGeneration(u)
	conditions := conditionsOf(u)
	ready, hasReady := conditions["Ready"]
	if !hasReady {
		ready, hasReady = conditions["Available"]
	}
	failed := conditions["Stalled"] == "True" || conditions["Failed"] == "True" || conditions["Degraded"] == "True"
	s := RolloutStatus{Observed: !hasOG || og >= u.GetGeneration(), DeadlineExceeded: failed}
	s.Done = s.Observed && (!hasReady || ready == "True") && !failed
	s.AvailableSince = latest(trueSince(u, "Ready"), trueSince(u, "Available"))
	s.CompletedAt = s.AvailableSince
	return s
}

// ArgoRolloutStatus is the RolloutStatus of an Argo Rollout, by Argo's own
// reading: observed once status.observedGeneration (a string) reaches its
// generation; done when status.phase is Healthy, which Argo sets only once
// every step and analysis of the new revision passed; failed when the phase
// is Degraded, the rollout was aborted (status.abort), or its Progressing
// condition has reason ProgressDeadlineExceeded. Paused and Progressing are
// neither: a canary waiting on its steps is still rolling.
func ArgoRolloutStatus(u *unstructured.Unstructured) RolloutStatus {
	og, hasOG := observedGeneration(u)
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	aborted, _, _ := unstructured.NestedBool(u.Object, "status", "abort")
	s := RolloutStatus{Observed: hasOG && og >= u.GetGeneration()}
	s.Done = s.Observed && phase == "Healthy"
	s.DeadlineExceeded = phase == "Degraded" || aborted || conditionReasons(u)["Progressing"] == progressDeadlineExceeded
	s.CompletedAt, s.AvailableSince = trueSince(u, "Healthy"), trueSince(u, "Available")
	return s
}

// trueSince returns when condition typ of u last became "True", from its
// lastTransitionTime; zero when it is not true or has no readable time.
func trueSince(u *unstructured.Unstructured, typ string) time.Time {
	if conditionsOf(u)[typ] != "True" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, conditionField(u, "lastTransitionTime")[typ])
	if err != nil {
		return time.Time{}
	}
	return t
}

// observedGeneration reads status.observedGeneration as an integer or a
// string of one; ok is false when it is absent or unreadable.
func observedGeneration(u *unstructured.Unstructured) (int64, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(u.Object, "status", "observedGeneration")
	if !found || err != nil {
		return 0, false
	}
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// conditionsOf returns the status of each condition in status.conditions,
// by type.
func conditionsOf(u *unstructured.Unstructured) map[string]string {
	return conditionField(u, "status")
}

// conditionReasons returns the reason of each condition in
// status.conditions, by type.
func conditionReasons(u *unstructured.Unstructured) map[string]string {
	return conditionField(u, "reason")
}

// conditionField returns field of each condition in status.conditions, by
// type; conditions that are not objects with a string type are skipped.
func conditionField(u *unstructured.Unstructured, field string) map[string]string {
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	out := make(map[string]string, len(list))
	for _, item := range list {
		c, ok := item.(map[string]any)
		if !ok {
			continue
		}
		typ, _ := c["type"].(string)
		v, _ := c[field].(string)
		if typ != "" {
			out[typ] = v
		}
	}
	return out
}
