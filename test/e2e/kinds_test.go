//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// countRevisions counts the ControllerRevisions owned by a workload: one per
// pod template it has had.
func countRevisions(ctx context.Context, ns, kind, name string) (int, error) {
	list, err := testEnv.client.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range list.Items {
		for _, o := range r.OwnerReferences {
			if o.Kind == kind && o.Name == name {
				n++
			}
		}
	}
	return n, nil
}

// waitRevisions waits until a workload owns exactly n ControllerRevisions.
func waitRevisions(t *testing.T, ns, kind, name string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d ControllerRevisions of %s %s", n, kind, name), func(ctx context.Context) (bool, error) {
		got, err := countRevisions(ctx, ns, kind, name)
		return got == n, err
	})
}

// StatefulSets and DaemonSets roll like Deployments: adoption writes no
// template, a consumed change makes kube-controller-manager create a new
// ControllerRevision, once.
func TestStatefulSetAndDaemonSetRoll(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	base := testDeployment(ns, "x", nil, envFrom("cfg")).Spec
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns, Annotations: auto()},
		Spec:       appsv1.StatefulSetSpec{Selector: base.Selector, Template: base.Template},
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns, Annotations: auto()},
		Spec:       appsv1.DaemonSetSpec{Selector: base.Selector, Template: base.Template},
	}
	ctx := context.Background()
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}))
	if _, err := testEnv.client.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := testEnv.client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := newBarrier(t, ns)
	startReroll(t, ns)
	waitFor(t, "adoption", func(ctx context.Context) (bool, error) {
		s, err := testEnv.client.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		d, err := testEnv.client.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		return err == nil && s.Annotations[annotationConsumed] != "" && d.Annotations[annotationConsumed] != "", err
	})
	waitRevisions(t, ns, "StatefulSet", "db", 1)
	waitRevisions(t, ns, "DaemonSet", "agent", 1)

	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitRevisions(t, ns, "StatefulSet", "db", 2)
	waitRevisions(t, ns, "DaemonSet", "agent", 2)
	b.wait()
	for kind, name := range map[string]string{"StatefulSet": "db", "DaemonSet": "agent"} {
		if n, err := countRevisions(ctx, ns, kind, name); err != nil || n != 2 {
			t.Errorf("%s %s has %d ControllerRevisions (%v), want 2", kind, name, n, err)
		}
		waitEvent(t, ns, name, "Rolled")
	}
}

// A CronJob is rolled through its job template: the next Job it creates
// runs the new content, and a Job that was already running is untouched.
func TestCronJobNextJobCarriesNewHash(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	template := testDeployment(ns, "x", nil, envFrom("cfg")).Spec.Template
	template.Spec.RestartPolicy = corev1.RestartPolicyNever
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: ns, Annotations: auto()},
		Spec: batchv1.CronJobSpec{
			Schedule:          "* * * * *",
			ConcurrencyPolicy: batchv1.AllowConcurrent,
			JobTemplate:       batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template}},
		},
	}
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}))
	if _, err := testEnv.client.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A Job already running from the old template, as `kubectl create job
	// --from=cronjob/report` would make.
	running := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "running", Namespace: ns}, Spec: batchv1.JobSpec{Template: template}}
	running.Spec.Template.Labels = map[string]string{"job": "running"}
	if _, err := testEnv.client.BatchV1().Jobs(ns).Create(ctx, running, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := newBarrier(t, ns)
	startReroll(t, ns)
	waitFor(t, "adoption of the CronJob", func(ctx context.Context) (bool, error) {
		c, err := testEnv.client.BatchV1().CronJobs(ns).Get(ctx, "report", metav1.GetOptions{})
		return err == nil && c.Annotations[annotationConsumed] != "", err
	})

	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	var hash string
	waitFor(t, "the CronJob's job template to roll", func(ctx context.Context) (bool, error) {
		c, err := testEnv.client.BatchV1().CronJobs(ns).Get(ctx, "report", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		hash = c.Spec.JobTemplate.Spec.Template.Annotations[annotationConfigHash]
		return hash != "", nil
	})
	b.wait()
	rolled := time.Now()
	// The CronJob controller creates a Job at the next minute.
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		jobs, err := testEnv.client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, j := range jobs.Items {
			if j.Name != "running" && j.CreationTimestamp.After(rolled) {
				if got := j.Spec.Template.Annotations[annotationConfigHash]; got != hash {
					return false, fmt.Errorf("Job %s, created after the roll, has config hash %q, want %q", j.Name, got, hash)
				}
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	j, err := testEnv.client.BatchV1().Jobs(ns).Get(ctx, "running", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Spec.Template.Annotations[annotationConfigHash]; got != "" {
		t.Errorf("the running Job's template changed: config hash %q", got)
	}
}
