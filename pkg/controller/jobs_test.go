package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// A Job is re-created with reroll's recorded state; when the create is
// rejected, the Job waits in a Secret of reroll's namespace, with a Warning
// on it, until resumeJobRecreations creates it.
func TestRecreateJob(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: testNamespace, UID: "old",
		Labels: map[string]string{"controller-uid": "old"}}}
	f := newFixture(t, job)
	f.opts.ControllerNamespace = "reroll-system"
	f.opts.Kinds = []string{"deployments", JobsKind}
	ctx := f.start()
	a, ok := f.c.view.kinds.get("Job")
	if !ok {
		t.Fatal("no Job adapter")
	}
	jobs := a.(*jobAdapter)
	rejected := true
	f.client.PrependReactor("create", "jobs", func(action core.Action) (bool, runtime.Object, error) {
		if rejected {
			return true, nil, apierrors.NewForbidden(batchv1.Resource("jobs"), "migrate", errors.New("exceeded quota"))
		}
		return false, nil, nil
	})
	name := cache.ObjectName{Namespace: testNamespace, Name: "migrate"}
	if _, err := jobs.recreate(ctx, name, map[string]string{plan.AnnotationConsumed: "v1;new"}); err == nil {
		t.Fatal("a rejected create reported no error")
	}
	if _, err := f.client.BatchV1().Jobs(testNamespace).Get(ctx, "migrate", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the old Job is still there: %v", err)
	}
	saved, err := f.client.CoreV1().Secrets("reroll-system").List(ctx, metav1.ListOptions{LabelSelector: pendingJobLabel + "=true"})
	if err != nil || len(saved.Items) != 1 {
		t.Fatalf("saved Jobs: %v, %v; want one", saved, err)
	}
	if events := f.events(); len(events) != 1 || !strings.HasPrefix(events[0], "Warning RecreateFailed re-creating this Job failed") {
		t.Errorf("events %q, want one RecreateFailed", events)
	}

	rejected = false
	resumeCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { jobs.runBackground(resumeCtx); close(done) }()
	waitUntil(t, "the Job to be re-created", func() bool {
		j, err := f.client.BatchV1().Jobs(testNamespace).Get(ctx, "migrate", metav1.GetOptions{})
		return err == nil && j.Annotations[plan.AnnotationConsumed] == "v1;new" && j.Labels["controller-uid"] == ""
	})
	waitUntil(t, "the saved Job to be dropped", func() bool {
		list, err := f.client.CoreV1().Secrets("reroll-system").List(ctx, metav1.ListOptions{LabelSelector: pendingJobLabel + "=true"})
		return err == nil && len(list.Items) == 0
	})
	stop()
	<-done
}

// A Job a CronJob created is never opted in, whatever its annotations.
func TestJobOwnedByCronJobIsNotOptedIn(t *testing.T) {
	owned := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "nightly-1", Namespace: testNamespace, Annotations: auto(),
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "nightly"}}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}}}
	cached, _ := TransformForCache(owned)
	f := newFixture(t)
	f.start()
	if f.c.view.wantsSync(workloadOf(cached.(*cachedWorkload))) {
		t.Error("a CronJob's Job wants syncing")
	}
}

// waitUntil polls cond every few milliseconds for up to 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
