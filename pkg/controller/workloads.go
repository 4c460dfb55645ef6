package controller

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchclient "k8s.io/client-go/kubernetes/typed/batch/v1"
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
}

// workloadAdapter adapts one kind of workload to the shared handlers and
// sync: the pure logic works on a pod template's references, and an adapter
// only says where the template is and how to patch.
type workloadAdapter interface {
	// groupKind names the kind: its Kind for built-in kinds, such as
	// "Deployment", and "Kind.group" for custom kinds, unique across groups.
	groupKind() string
	// informer returns the kind's shared informer, whose cache holds
	// *cachedWorkload objects.
	informer() informerGroup
	// groupResource names the kind's resource, for NotFound errors.
	groupResource() schema.GroupResource
	// templatePath is the path of the pod template in the object.
	templatePath() []string
	// patch sends a patch of the workload's annotations and returns the
	// patched object's resourceVersion.
	patch(ctx context.Context, name cache.ObjectName, body []byte, opts metav1.PatchOptions) (string, error)
}

// workloadObject is what every typed workload object is.
type workloadObject interface {
	runtime.Object
	metav1.Object
}

// patcher is the Patch method every typed client has.
type patcher[T any] interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
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
		templateError: w.TemplateError, canRestart: w.CanRestart, ownedByCronJob: w.OwnedByCronJob}
}

// typedAdapter is the workloadAdapter of a built-in kind served by the
// typed Clientset and SharedInformerFactory.
type typedAdapter[T workloadObject] struct {
	name     string
	resource schema.GroupResource
	// path is where the pod template is.
	path   []string
	inf    informerGroup
	client func(namespace string) patcher[T]
}

// groupKind implements workloadAdapter.
func (k *typedAdapter[T]) groupKind() string { return k.name }

// informer implements workloadAdapter.
func (k *typedAdapter[T]) informer() informerGroup { return k.inf }

// groupResource implements workloadAdapter.
func (k *typedAdapter[T]) groupResource() schema.GroupResource { return k.resource }

// templatePath implements workloadAdapter.
func (k *typedAdapter[T]) templatePath() []string { return k.path }

// patch implements workloadAdapter with a strategic merge patch.
func (k *typedAdapter[T]) patch(ctx context.Context, name cache.ObjectName, body []byte, opts metav1.PatchOptions) (string, error) {
	obj, err := k.client(name.Namespace).Patch(ctx, name.Name, types.StrategicMergePatchType, body, opts)
	if err != nil {
		return "", err
	}
	return obj.GetResourceVersion(), nil
}

// jobAdapter is the workloadAdapter of Jobs, with the client a roll
// re-creates them through (see jobs.go).
type jobAdapter struct {
	typedAdapter[*batchv1.Job]
	jobs batchclient.JobsGetter
}

// BuiltinResources returns the workload resources served by the typed
// Clientset, by the names --kinds uses.
func BuiltinResources() []string {
	return []string{"deployments", "statefulsets", "daemonsets", "cronjobs"}
}

// JobsKind is the --kinds name of Jobs, which reroll rolls by re-creating
// them (jobs.go); not watched by default, except with
// --reloader-annotations, as Reloader does.
const JobsKind = "jobs"

// KindNames returns every name --kinds takes: the built-in kinds served by
// the typed Clientset, Jobs, and Argo Rollouts.
func KindNames() []string {
	return append(BuiltinResources(), JobsKind, ArgoRolloutsKind)
}

// BuiltinResource returns the group, version and resource of a built-in
// resource named as in BuiltinResources.
func BuiltinResource(name string) schema.GroupVersionResource {
	if name == "cronjobs" || name == JobsKind {
		return batchv1.SchemeGroupVersion.WithResource(name)
	}
	return appsv1.SchemeGroupVersion.WithResource(name)
}

// specTemplate is where Deployments, StatefulSets and DaemonSets keep their
// pod template; jobTemplate is a CronJob's: the template of the Jobs it
// creates, so a roll changes its next Job and leaves running Jobs alone.
var (
	specTemplate = []string{"spec", "template"}
	jobTemplate  = []string{"spec", "jobTemplate", "spec", "template"}
)

// builtinAdapter returns the workloadAdapter of a built-in resource named
// as in BuiltinResources, or an error naming the valid ones.
func builtinAdapter(name string, client kubernetes.Interface, factories InformerFactories) (workloadAdapter, error) {
	clients := client.AppsV1()
	gr := BuiltinResource(name).GroupResource()
	switch name {
	case "deployments":
		return &typedAdapter[*appsv1.Deployment]{
			name: "Deployment", resource: gr, path: specTemplate, inf: factories.group(func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Apps().V1().Deployments().Informer()
			}),
			client: func(ns string) patcher[*appsv1.Deployment] { return clients.Deployments(ns) },
		}, nil
	case "statefulsets":
		return &typedAdapter[*appsv1.StatefulSet]{
			name: "StatefulSet", resource: gr, path: specTemplate, inf: factories.group(func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Apps().V1().StatefulSets().Informer()
			}),
			client: func(ns string) patcher[*appsv1.StatefulSet] { return clients.StatefulSets(ns) },
		}, nil
	case "daemonsets":
		return &typedAdapter[*appsv1.DaemonSet]{
			name: "DaemonSet", resource: gr, path: specTemplate, inf: factories.group(func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Apps().V1().DaemonSets().Informer()
			}),
			client: func(ns string) patcher[*appsv1.DaemonSet] { return clients.DaemonSets(ns) },
		}, nil
	case "cronjobs":
		return &typedAdapter[*batchv1.CronJob]{
			name: "CronJob", resource: gr, path: jobTemplate, inf: factories.group(func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Batch().V1().CronJobs().Informer()
			}),
			client: func(ns string) patcher[*batchv1.CronJob] { return client.BatchV1().CronJobs(ns) },
		}, nil
	case JobsKind:
		return &jobAdapter{typedAdapter: typedAdapter[*batchv1.Job]{
			name: "Job", resource: gr, path: specTemplate, inf: factories.group(func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Batch().V1().Jobs().Informer()
			}),
			client: func(ns string) patcher[*batchv1.Job] { return client.BatchV1().Jobs(ns) },
		}, jobs: client.BatchV1()}, nil
	}
	return nil, fmt.Errorf("unknown kind %q: the built-in kinds are %s", name, strings.Join(append(BuiltinResources(), JobsKind), ", "))
}
