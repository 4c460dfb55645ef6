package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// workloadKey is a queue item: which workload to sync. It is a comparable
// value, so the queue de-duplicates it; it never carries the object itself.
type workloadKey struct {
	// groupKind names the workload's kind, as workloadAdapter.groupKind.
	groupKind string
	name      cache.ObjectName
}

// String returns "Deployment ns/name", for logs.
func (k workloadKey) String() string {
	return k.groupKind + " " + k.name.String()
}

// id returns the name the rollout-safety rules know the workload by.
func (k workloadKey) id() plan.WorkloadID {
	return plan.WorkloadID{Kind: k.groupKind, Namespace: k.name.Namespace, Name: k.name.Name}
}

// keyOf returns the key of the workload the rules name id.
func keyOf(id plan.WorkloadID) workloadKey {
	return workloadKey{groupKind: id.Kind, name: cache.ObjectName{Namespace: id.Namespace, Name: id.Name}}
}

// workload is what the sync needs of a cached workload of any kind. Its
// fields point into the cache: read them, never write them.
type workload struct {
	// object is the cached object, the subject of Events.
	object runtime.Object
	// meta is the object's metadata.
	meta metav1.Object
	// references are the references of the workload's pod template.
	references []plan.PodReference
	// status is what its rollout state is derived from.
	status plan.RolloutStatus
	// templateAnnotations are Reloader's opt-in annotations on its pod
	// template.
	templateAnnotations map[string]string
	// templateError says why a custom workload has no usable template.
	templateError string
	// canRestart: its kind can roll by a restart.
	canRestart bool
	// ownedByCronJob: a Job its CronJob manages; never opted in.
	ownedByCronJob bool
	// fromWorkloadRef: its references are those of the Deployment it names
	// in spec.workloadRef, whose template it does not own.
	fromWorkloadRef bool
	// selector selects its pods; empty when reroll does not watch them.
	selector string
}

// workloadAdapter adapts one kind of workload to the shared handlers and
// sync: the pure logic works on a pod template's references, and an adapter
// only says where the template is and how to write.
type workloadAdapter interface {
	// groupKind names the kind: its Kind for built-in kinds, such as
	// "Deployment", and "Kind.group" for custom kinds, unique across groups.
	groupKind() string
	// informer returns the kind's shared informer, whose cache holds
	// *cachedWorkload objects.
	informer() informerGroup
	// groupResource names the kind's resource, for NotFound errors.
	groupResource() schema.GroupResource
	// write makes one sync's write to workload name (see patchWrites) and
	// returns the written object's resourceVersion: a patch of reroll's
	// annotations, or, for a kind whose template cannot change (Jobs), a
	// roll by re-creating the object.
	write(ctx context.Context, name cache.ObjectName, w patchWrites, fieldManager string) (string, error)
}

// backgroundAdapter is an adapter with work of its own that runs while the
// workers do (the Jobs' unfinished re-creations).
type backgroundAdapter interface {
	workloadAdapter
	// runBackground works until ctx is done.
	runBackground(ctx context.Context)
}

// getWorkload returns the cached workload of a's kind named name, or a
// NotFound error.
func getWorkload(a workloadAdapter, name cache.ObjectName) (workload, error) {
	obj, exists, err := a.informer().GetIndexer().GetByKey(name.String())
	if err != nil {
		return workload{}, err
	}
	if !exists {
		return workload{}, apierrors.NewNotFound(a.groupResource(), name.Name)
	}
	return viewWorkload(a, obj)
}

// viewWorkload returns the workload view of an object from a's informer.
// An object that runs another workload's template (spec.workloadRef) gets
// that workload's references, as the cache holds them now.
func viewWorkload(a workloadAdapter, obj any) (workload, error) {
	cw, ok := obj.(*cachedWorkload)
	if !ok {
		return workload{}, fmt.Errorf("expected a cached %s, got %T", a.groupKind(), obj)
	}
	w := workloadOf(cw)
	if r, ok := a.(templateResolver); ok && cw.WorkloadRef != "" {
		w.fromWorkloadRef = true
		refs, annotations, found := r.referencedTemplate(cw.Namespace, cw.WorkloadRef)
		if !found {
			w.templateError = fmt.Sprintf("spec.workloadRef names Deployment %s, which does not exist or is not watched (--kinds)", cw.WorkloadRef)
		}
		w.references, w.templateAnnotations = refs, annotations
	}
	return w, nil
}

// templateResolver is an adapter whose objects may run the pod template of
// a Deployment they name.
type templateResolver interface {
	// referencedTemplate returns the references and Reloader's template
	// annotations of Deployment namespace/name, or false.
	referencedTemplate(namespace, name string) ([]plan.PodReference, map[string]string, bool)
}

// workloadOf returns the workload view of a cached workload.
func workloadOf(w *cachedWorkload) workload {
	return workload{object: w, meta: w, references: w.References, status: w.Status, templateAnnotations: w.TemplateAnnotations,
		templateError: w.TemplateError, canRestart: w.CanRestart, ownedByCronJob: w.OwnedByCronJob, selector: w.Selector}
}

// typedAdapter is the workloadAdapter of a built-in kind served by the
// typed Clientset and SharedInformerFactory.
type typedAdapter struct {
	kind   Kind
	inf    informerGroup
	client kubernetes.Interface
}

// newTypedAdapter returns the adapter of built-in kind k, watched through
// factories.
func newTypedAdapter(k Kind, client kubernetes.Interface, factories InformerFactories) *typedAdapter {
	return &typedAdapter{kind: k, inf: factories.group(k.informer), client: client}
}

// groupKind implements workloadAdapter.
func (a *typedAdapter) groupKind() string { return a.kind.Kind }

// informer implements workloadAdapter.
func (a *typedAdapter) informer() informerGroup { return a.inf }

// groupResource implements workloadAdapter.
func (a *typedAdapter) groupResource() schema.GroupResource { return a.kind.Resource.GroupResource() }

// write implements workloadAdapter with a strategic merge patch.
func (a *typedAdapter) write(ctx context.Context, name cache.ObjectName, w patchWrites, fieldManager string) (string, error) {
	body, err := annotationPatch(w, a.kind.templatePath)
	if err != nil {
		return "", err
	}
	return a.kind.patch(ctx, a.client, name, body, metav1.PatchOptions{FieldManager: fieldManager})
}

// patchWrites are the values one sync writes; empty ones are left out.
type patchWrites struct {
	// state is the consumed state, and rollout the rollout record, both on
	// the workload's metadata.
	state, rollout string
	// configHash goes on the pod template (a roll by the template), and
	// restartAt in spec.restartAt (a roll by a restart).
	configHash, restartAt string
}

// rolls reports whether the writes roll the workload.
func (w patchWrites) rolls() bool {
	return w.configHash != "" || w.restartAt != ""
}

// annotationPatch returns the patch reroll writes: the consumed state and,
// when rolling, the rollout record (if not empty) on the workload's
// metadata, and either the config hash on the pod template found at
// templatePath or spec.restartAt. The body is valid both as a strategic
// merge patch and as a JSON merge patch.
func annotationPatch(w patchWrites, templatePath []string) ([]byte, error) {
	annotations := map[string]string{plan.AnnotationConsumed: w.state}
	if w.rollout != "" {
		annotations[plan.AnnotationRollout] = w.rollout
	}
	patch := map[string]any{
		"metadata": map[string]any{"annotations": annotations},
	}
	if w.configHash != "" {
		var node any = map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{plan.AnnotationConfigHash: w.configHash}},
		}
		for i := len(templatePath) - 1; i >= 0; i-- {
			node = map[string]any{templatePath[i]: node}
		}
		maps.Copy(patch, node.(map[string]any))
	}
	if w.restartAt != "" {
		patch["spec"] = map[string]any{"restartAt": w.restartAt}
	}
	return json.Marshal(patch)
}
