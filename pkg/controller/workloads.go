package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	// template is the pod template reroll reads and annotates.
	template *corev1.PodTemplateSpec
}

// workloadKind adapts one kind of workload to the shared handlers and sync:
// the pure logic works on a pod template, and a kind only says where the
// template is and how to patch.
type workloadKind interface {
	// kind returns the workload's Kind, such as "Deployment".
	kind() string
	// informer returns the kind's shared informer.
	informer() cache.SharedIndexInformer
	// get returns the cached workload, or a NotFound error.
	get(name cache.ObjectName) (workload, error)
	// view returns the workload view of an object from the kind's informer.
	view(obj any) (workload, error)
	// templatePath is the path of the pod template in the object.
	templatePath() []string
	// patch sends a patch of the workload's annotations.
	patch(ctx context.Context, name cache.ObjectName, body []byte, opts metav1.PatchOptions) error
}

// workloadObject is what every typed workload object is.
type workloadObject interface {
	runtime.Object
	metav1.Object
}

// typedKind is the workloadKind of a built-in kind served by the typed
// Clientset and SharedInformerFactory.
type typedKind[T workloadObject] struct {
	name      string
	resource  string
	inf       cache.SharedIndexInformer
	template  func(T) *corev1.PodTemplateSpec
	patchFunc func(ctx context.Context, namespace, name string, body []byte, opts metav1.PatchOptions) error
}

// kind implements workloadKind.
func (k *typedKind[T]) kind() string { return k.name }

// informer implements workloadKind.
func (k *typedKind[T]) informer() cache.SharedIndexInformer { return k.inf }

// get implements workloadKind, reading from the informer's cache.
func (k *typedKind[T]) get(name cache.ObjectName) (workload, error) {
	obj, exists, err := k.inf.GetIndexer().GetByKey(name.String())
	if err != nil {
		return workload{}, err
	}
	if !exists {
		return workload{}, apierrors.NewNotFound(appsv1.Resource(k.resource), name.Name)
	}
	return k.view(obj)
}

// view implements workloadKind.
func (k *typedKind[T]) view(obj any) (workload, error) {
	t, ok := obj.(T)
	if !ok {
		return workload{}, fmt.Errorf("expected a %s, got %T", k.name, obj)
	}
	return workload{object: t, meta: t, template: k.template(t)}, nil
}

// templatePath implements workloadKind: every built-in kind keeps its pod
// template at spec.template.
func (k *typedKind[T]) templatePath() []string { return []string{"spec", "template"} }

// patch implements workloadKind with a strategic merge patch.
func (k *typedKind[T]) patch(ctx context.Context, name cache.ObjectName, body []byte, opts metav1.PatchOptions) error {
	return k.patchFunc(ctx, name.Namespace, name.Name, body, opts)
}

// deploymentKind returns the workloadKind of apps/v1 Deployments.
func deploymentKind(client kubernetes.Interface, factory informers.SharedInformerFactory) workloadKind {
	return &typedKind[*appsv1.Deployment]{
		name:     "Deployment",
		resource: "deployments",
		inf:      factory.Apps().V1().Deployments().Informer(),
		template: func(d *appsv1.Deployment) *corev1.PodTemplateSpec { return &d.Spec.Template },
		patchFunc: func(ctx context.Context, namespace, name string, body []byte, opts metav1.PatchOptions) error {
			_, err := client.AppsV1().Deployments(namespace).Patch(ctx, name, types.StrategicMergePatchType, body, opts)
			return err
		},
	}
}
