package plan

import (
	"reflect"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestJobForRecreation(t *testing.T) {
	uidLabels := map[string]string{"app": "migrate", "controller-uid": "u1", "batch.kubernetes.io/controller-uid": "u1",
		"job-name": "migrate", "batch.kubernetes.io/job-name": "migrate"}
	old := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: "ns", UID: "u1", ResourceVersion: "9", Generation: 2,
			CreationTimestamp: metav1.Now(), Labels: uidLabels, Annotations: map[string]string{"team": "db", AnnotationConsumed: "v1;old"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: batchv1.JobSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u1"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: uidLabels},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "m", Image: "img"}}}},
		},
		Status: batchv1.JobStatus{Succeeded: 1},
	}
	got := JobForRecreation(old, map[string]string{AnnotationConsumed: "v1;new", AnnotationRollout: "v1;at=1"})
	want := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: "ns", Labels: map[string]string{"app": "migrate"},
			Annotations: map[string]string{"team": "db", AnnotationConsumed: "v1;new", AnnotationRollout: "v1;at=1"}},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "migrate"}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "m", Image: "img"}}}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if old.Labels["controller-uid"] != "u1" || old.Annotations[AnnotationConsumed] != "v1;old" {
		t.Error("the old Job was modified")
	}

	manual := old.DeepCopy()
	manual.Spec.ManualSelector = ptr.To(true)
	kept := JobForRecreation(manual, nil)
	if kept.Spec.Selector == nil || kept.Labels["controller-uid"] != "u1" {
		t.Error("a Job that chose its own selector lost it")
	}
}

func TestOwnedByCronJob(t *testing.T) {
	tests := []struct {
		name   string
		owners []metav1.OwnerReference
		want   bool
	}{
		{"no owner", nil, false},
		{"a CronJob", []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "nightly"}}, true},
		{"another owner", []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Pipeline", Name: "p"}}, false},
	}
	for _, tt := range tests {
		if got := OwnedByCronJob(tt.owners); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}
