package plan

import (
	"maps"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A Job's pods read their configuration when they start, like any pod, but
// a Job's pod template cannot change: reroll rolls a Job by re-creating it
// from the same spec.

// JobForRecreation returns the Job that replaces old: the same name, labels,
// annotations (plus annotations, reroll's recorded state) and spec, less
// what the API server owns: its identity, versions and status, and, unless
// the Job chose its selector itself, the generated selector and the labels
// that carry the old Job's UID. The result shares nothing with old.
func JobForRecreation(old *batchv1.Job, annotations map[string]string) *batchv1.Job {
	j := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name: old.Name, Namespace: old.Namespace,
			Labels: maps.Clone(old.Labels), Annotations: maps.Clone(old.Annotations),
			OwnerReferences: old.DeepCopy().OwnerReferences,
		},
		Spec: *old.Spec.DeepCopy(),
	}
	if j.Annotations == nil {
		j.Annotations = map[string]string{}
	}
	maps.Copy(j.Annotations, annotations)
	if j.Spec.ManualSelector == nil || !*j.Spec.ManualSelector {
		j.Spec.Selector = nil
		// The labels the API server adds to a Job with a generated selector,
		// and to its pod template: they name the old Job's UID, and a new
		// Job with them would be rejected.
		for _, l := range [...]string{"controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name"} {
			delete(j.Labels, l)
			delete(j.Spec.Template.Labels, l)
		}
	}
	return j
}

// OwnedByCronJob reports whether a Job was created by a CronJob: reroll
// never touches those; their CronJob's next Job runs the new content.
func OwnedByCronJob(owners []metav1.OwnerReference) bool {
	for _, o := range owners {
		if o.Kind == "CronJob" && o.APIVersion == "batch/v1" {
			return true
		}
	}
	return false
}
