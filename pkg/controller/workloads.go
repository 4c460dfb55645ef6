package controller

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// workloadKey is a queue item: which workload to sync. It is a comparable
// value, so the queue de-duplicates it; it never carries the object itself.
type workloadKey struct {
	kind string
	name cache.ObjectName
}

// String returns "Deployment ns/name", for logs.
func (k workloadKey) String() string {
	return k.kind + " " + k.name.String()
}

// workload is what the sync needs of a cached workload of any kind. Its
// fields point into the cache: read them, never write them.
type workload struct {
	// object is the cached object, the subject of Events.
	object runtime.Object
	// meta is the object's metadata.
	meta metav1.Object
	// spec holds the references of the workload's pod template (see
	// referencesOnly).
	spec *corev1.PodSpec
	// templateError says why a custom workload has no usable template.
	templateError string
}

// workloadKind adapts one kind of workload to the shared handlers and sync:
// the pure logic works on a pod template, and a kind only says where the
// template is and how to patch.
type workloadKind interface {
	// kind returns the workload's Kind, such as "Deployment".
	kind() string
	// informer returns the kind's shared informer, whose cache holds
	// *cachedWorkload objects.
	informer() cache.SharedIndexInformer
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

// getWorkload returns the cached workload of kind k named name, or a
// NotFound error.
func getWorkload(k workloadKind, name cache.ObjectName) (workload, error) {
	obj, exists, err := k.informer().GetIndexer().GetByKey(name.String())
	if err != nil {
		return workload{}, err
	}
	if !exists {
		return workload{}, apierrors.NewNotFound(k.groupResource(), name.Name)
	}
	return viewWorkload(k, obj)
}

// viewWorkload returns the workload view of an object from k's informer.
func viewWorkload(k workloadKind, obj any) (workload, error) {
	w, ok := obj.(*cachedWorkload)
	if !ok {
		return workload{}, fmt.Errorf("expected a cached %s, got %T", k.kind(), obj)
	}
	return workload{object: w, meta: w, spec: &w.Spec, templateError: w.TemplateError}, nil
}

// typedKind is the workloadKind of a built-in kind served by the typed
// Clientset and SharedInformerFactory.
type typedKind[T workloadObject] struct {
	name     string
	resource string
	inf      cache.SharedIndexInformer
	client   func(namespace string) patcher[T]
}

// kind implements workloadKind.
func (k *typedKind[T]) kind() string { return k.name }

// informer implements workloadKind.
func (k *typedKind[T]) informer() cache.SharedIndexInformer { return k.inf }

// groupResource implements workloadKind.
func (k *typedKind[T]) groupResource() schema.GroupResource { return appsv1.Resource(k.resource) }

// templatePath implements workloadKind: every built-in kind keeps its pod
// template at spec.template.
func (k *typedKind[T]) templatePath() []string { return []string{"spec", "template"} }

// patch implements workloadKind with a strategic merge patch.
func (k *typedKind[T]) patch(ctx context.Context, name cache.ObjectName, body []byte, opts metav1.PatchOptions) (string, error) {
	obj, err := k.client(name.Namespace).Patch(ctx, name.Name, types.StrategicMergePatchType, body, opts)
	if err != nil {
		return "", err
	}
	return obj.GetResourceVersion(), nil
}

// BuiltinKinds returns the workload kinds served by the typed Clientset,
// by the names --kinds uses.
func BuiltinKinds() []string {
	return []string{"deployments", "statefulsets", "daemonsets"}
}

// builtinKind returns the workloadKind of a built-in kind named as in
// BuiltinKinds, or an error naming the valid ones.
func builtinKind(name string, client kubernetes.Interface, factory informers.SharedInformerFactory) (workloadKind, error) {
	apps, clients := factory.Apps().V1(), client.AppsV1()
	switch name {
	case "deployments":
		return &typedKind[*appsv1.Deployment]{
			name: "Deployment", resource: name, inf: apps.Deployments().Informer(),
			client: func(ns string) patcher[*appsv1.Deployment] { return clients.Deployments(ns) },
		}, nil
	case "statefulsets":
		return &typedKind[*appsv1.StatefulSet]{
			name: "StatefulSet", resource: name, inf: apps.StatefulSets().Informer(),
			client: func(ns string) patcher[*appsv1.StatefulSet] { return clients.StatefulSets(ns) },
		}, nil
	case "daemonsets":
		return &typedKind[*appsv1.DaemonSet]{
			name: "DaemonSet", resource: name, inf: apps.DaemonSets().Informer(),
			client: func(ns string) patcher[*appsv1.DaemonSet] { return clients.DaemonSets(ns) },
		}, nil
	}
	return nil, fmt.Errorf("unknown kind %q: the built-in kinds are %s", name, strings.Join(BuiltinKinds(), ", "))
}
