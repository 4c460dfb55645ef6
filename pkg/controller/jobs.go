package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// Jobs (--kinds=jobs): a Job's pod template cannot change, so reroll rolls
// a Job by re-creating it from the same spec (plan.JobForRecreation):
// delete it, with background propagation, then create it again.
//
// Between the delete and the create the Job exists nowhere, and a crash
// there would lose it without a word. So before deleting, reroll saves the
// Job it is about to create in a Secret in its own namespace (a Secret, as
// a Job's spec may hold literal values), and deletes that Secret only once
// the new Job exists. resumeJobRecreations finishes what a crash, an
// outage or a rejected create left behind, and warns on the Job while it
// cannot. Adopting and recording references patch a Job's annotations like
// any kind's.

// pendingJobLabel marks the Secrets that hold a Job being re-created.
const pendingJobLabel = "reroll.dev/pending-job"

// pendingJobOldUID is the annotation of such a Secret naming the UID of the
// Job being replaced, and pendingJobKey its key holding the new Job.
const (
	pendingJobOldUID = "reroll.dev/old-uid"
	pendingJobKey    = "job.json"
)

// resumeJobsEvery is how often resumeJobRecreations looks for
// re-creations left unfinished.
const resumeJobsEvery = 10 * time.Second

// jobAdapter is the workloadAdapter of Jobs: a roll re-creates the Job,
// everything else patches it like any built-in kind.
type jobAdapter struct {
	*typedAdapter
	// namespace is reroll's own, where the Jobs being re-created are saved.
	namespace    string
	fieldManager string
	// warn reports a re-creation the API server rejects.
	warn warnFunc
	// resume: finish unfinished re-creations in the background (not under
	// --dry-run, which writes nothing).
	resume bool
}

// write implements workloadAdapter: a roll re-creates the Job carrying
// reroll's recorded state; any other write is a patch.
func (a *jobAdapter) write(ctx context.Context, name cache.ObjectName, w patchWrites, fieldManager string) (string, error) {
	if !w.rolls() {
		return a.typedAdapter.write(ctx, name, w, fieldManager)
	}
	return a.recreate(ctx, name, map[string]string{plan.AnnotationConsumed: w.state, plan.AnnotationRollout: w.rollout})
}

// recreate rolls Job name by re-creating it carrying annotations (reroll's
// recorded state), and returns the new Job's resourceVersion. It returns
// the API's NotFound when the Job is gone.
func (a *jobAdapter) recreate(ctx context.Context, name cache.ObjectName, annotations map[string]string) (string, error) {
	live, err := a.client.BatchV1().Jobs(name.Namespace).Get(ctx, name.Name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	next := plan.JobForRecreation(live, annotations)
	intent, err := a.savePendingJob(ctx, live.UID, next)
	if err != nil {
		return "", fmt.Errorf("saving Job %s before re-creating it: %w", name, err)
	}
	return a.finishRecreation(ctx, intent, live.UID, next)
}

// pendingJobName is the name of the Secret that holds the re-creation of
// Job namespace/name: one per Job, so a later roll replaces an earlier one.
func pendingJobName(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	return "reroll-job-" + hex.EncodeToString(sum[:10])
}

// savePendingJob saves next, which replaces the Job of UID old, in its
// Secret, and returns the Secret's name.
func (a *jobAdapter) savePendingJob(ctx context.Context, old types.UID, next *batchv1.Job) (string, error) {
	body, err := json.Marshal(next)
	if err != nil {
		return "", err
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: pendingJobName(next.Namespace, next.Name), Namespace: a.namespace,
			Labels:      map[string]string{pendingJobLabel: "true", "app.kubernetes.io/name": "reroll"},
			Annotations: map[string]string{pendingJobOldUID: string(old), plan.AnnotationIgnore: "true"},
		},
		Data: map[string][]byte{pendingJobKey: body},
	}
	secrets := a.client.CoreV1().Secrets(a.namespace)
	_, err = secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: a.fieldManager})
	if apierrors.IsAlreadyExists(err) {
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: a.fieldManager})
	}
	return s.Name, err
}

// finishRecreation deletes the Job of UID old, if it is still there, and
// creates next; once next exists it drops the saved Secret intent. Any
// failure leaves the Secret for a retry, and a create the API server
// rejects gets a Warning on the Job.
func (a *jobAdapter) finishRecreation(ctx context.Context, intent string, old types.UID, next *batchv1.Job) (string, error) {
	client := a.client.BatchV1().Jobs(next.Namespace)
	background := metav1.DeletePropagationBackground
	err := client.Delete(ctx, next.Name, metav1.DeleteOptions{PropagationPolicy: &background, Preconditions: &metav1.Preconditions{UID: &old}})
	// NotFound: already deleted; Conflict: the precondition failed, so the
	// name holds another Job (ours, created before a crash, or someone's).
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return "", fmt.Errorf("deleting Job %s/%s to re-create it: %w", next.Namespace, next.Name, err)
	}
	created, err := client.Create(ctx, next, metav1.CreateOptions{FieldManager: a.fieldManager})
	if apierrors.IsAlreadyExists(err) {
		existing, getErr := client.Get(ctx, next.Name, metav1.GetOptions{})
		if getErr != nil || existing.UID == old {
			return "", fmt.Errorf("re-creating Job %s/%s: the old Job is still there", next.Namespace, next.Name)
		}
		created, err = existing, nil // another Job holds the name: nothing left to re-create
	}
	if err != nil {
		a.warn(ctx, next, plan.ReasonRecreateFailed, "Recreate", fmt.Sprintf(
			"re-creating this Job failed: %v; reroll retries, and keeps the Job in Secret %s/%s until it succeeds", err, a.namespace, intent))
		return "", err
	}
	if err := a.client.CoreV1().Secrets(a.namespace).Delete(ctx, intent, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Info("Could not drop the saved Job; it is dropped on the next look", "secret", klog.KRef(a.namespace, intent), "err", err)
	}
	return created.ResourceVersion, nil
}

// runBackground implements backgroundAdapter: it finishes, until ctx is
// done, the re-creations of Jobs that a crash, an outage or a rejected
// create left unfinished: at once, then every resumeJobsEvery.
func (a *jobAdapter) runBackground(ctx context.Context) {
	if !a.resume {
		return
	}
	wait.UntilWithContext(ctx, a.resumeRecreations, resumeJobsEvery)
}

// resumeRecreations finishes each unfinished re-creation it finds, once.
func (a *jobAdapter) resumeRecreations(ctx context.Context) {
	logger := klog.FromContext(ctx)
	list, err := a.client.CoreV1().Secrets(a.namespace).List(ctx, metav1.ListOptions{LabelSelector: pendingJobLabel + "=true"})
	if err != nil {
		logger.Error(err, "Listing unfinished Job re-creations; retrying", "after", resumeJobsEvery)
		return
	}
	for i := range list.Items {
		s := &list.Items[i]
		next := &batchv1.Job{}
		if err := json.Unmarshal(s.Data[pendingJobKey], next); err != nil || next.Name == "" {
			logger.Error(err, "Unreadable saved Job; leaving it", "secret", klog.KObj(s))
			continue
		}
		if _, err := a.finishRecreation(ctx, s.Name, types.UID(s.Annotations[pendingJobOldUID]), next); err != nil {
			logger.Info("Job re-creation still unfinished; retrying", "job", klog.KObj(next), "after", resumeJobsEvery, "err", err)
			continue
		}
		logger.Info("Finished an unfinished Job re-creation", "job", klog.KObj(next))
	}
}
