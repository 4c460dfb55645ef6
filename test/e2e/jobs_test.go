//go:build e2e

package e2e

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// testJob returns a Job that reads every key of ConfigMap cfg.
func testJob(ns, name string, annotations map[string]string) *batchv1.Job {
	template := testDeployment(ns, name, nil, envFrom("cfg")).Spec.Template
	template.Labels = nil
	template.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec:       batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: template},
	}
}

// A Job whose consumed content changes is re-created once, from the same
// spec and carrying reroll's recorded state, so a restart of reroll does
// not re-create it again; a Job that a CronJob created is never touched.
func TestJobRecreatedOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	jobs := testEnv.client.BatchV1().Jobs(ns)
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}))
	create(t, testJob(ns, "migrate", auto()))
	cron := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", Suspend: ptr.To(true),
			JobTemplate: batchv1.JobTemplateSpec{Spec: testJob(ns, "x", nil).Spec}},
	}
	cron, err := testEnv.client.BatchV1().CronJobs(ns).Create(ctx, cron, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned := testJob(ns, "nightly-1", auto())
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "nightly", UID: cron.UID, Controller: ptr.To(true)}}
	if owned, err = jobs.Create(ctx, owned, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r := startReroll(t, ns, "--kinds=jobs")
	var old types.UID
	waitFor(t, "adoption of Job migrate", func(ctx context.Context) (bool, error) {
		j, err := jobs.Get(ctx, "migrate", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		old = j.UID
		return j.Annotations[annotationConsumed] != "", nil
	})
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	var recreated *batchv1.Job
	waitFor(t, "Job migrate to be re-created", func(ctx context.Context) (bool, error) {
		j, err := jobs.Get(ctx, "migrate", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil // between the delete and the create
		}
		recreated = j
		return err == nil && j.UID != old, err
	})
	if recreated.Annotations[annotationConsumed] == "" || recreated.Annotations["reroll.dev/rollout"] == "" {
		t.Errorf("the re-created Job carries no recorded state: %v", recreated.Annotations)
	}
	waitFor(t, "the saved Job to be dropped", func(ctx context.Context) (bool, error) {
		list, err := testEnv.client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "reroll.dev/pending-job=true"})
		return err == nil && len(list.Items) == 0, err
	})
	waitEvent(t, ns, "migrate", "Rolled")

	// A restart of reroll finds the new Job up to date.
	r.stop()
	r2 := startReroll(t, ns, "--kinds=jobs")
	r2.waitLog(1, "Synced", `workload="Job `+ns+`/migrate"`)
	if j, err := jobs.Get(ctx, "migrate", metav1.GetOptions{}); err != nil || j.UID != recreated.UID {
		t.Errorf("after reroll's restart Job migrate is %v (%v), want the same re-created Job %s", j.UID, err, recreated.UID)
	}
	if j, err := jobs.Get(ctx, "nightly-1", metav1.GetOptions{}); err != nil || j.UID != owned.UID || j.Annotations[annotationConsumed] != "" {
		t.Errorf("the CronJob's Job was touched: %v", err)
	}
	if n := r.countLog(`"Rolled"`) + r2.countLog(`"Rolled"`); n != 1 {
		t.Errorf("rolled %d times, want once", n)
	}
}
