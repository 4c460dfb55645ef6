package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/informers/internalinterfaces"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// This file is everything that decides what reroll's informers cache: the
// factory and its watches, and the transforms every object goes through
// before it enters a cache. reroll caches every ConfigMap, Secret and
// workload in its scope, so each byte kept here is multiplied by thousands;
// what is kept is exactly what the sync reads.

// lastAppliedAnnotation is kubectl's copy of the whole applied object. On a
// Secret it holds every value in clear text, so it is never cached.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// InformerFactories are reroll's SharedInformerFactories: a single one
// that watches every namespace, or one per namespace of o.Namespaces, each
// watching only its own, so that a Role in each is all reroll needs.
type InformerFactories []informers.SharedInformerFactory

// NewInformerFactories returns reroll's informer factories, set up so that
// nothing large is cached: every object goes through TransformForCache;
// informers watch o.Namespaces (none: all); ConfigMaps and Secrets are
// watched through o.ConfigSelector and never resynced (a resync of config
// changes nothing; workload resyncs, every o.ResyncPeriod, re-check what
// consumes it).
func NewInformerFactories(client kubernetes.Interface, o Options) InformerFactories {
	if len(o.Namespaces) == 0 {
		return InformerFactories{newInformerFactory(client, o, metav1.NamespaceAll)}
	}
	factories := make(InformerFactories, len(o.Namespaces))
	for i, ns := range o.Namespaces {
		factories[i] = newInformerFactory(client, o, ns)
	}
	return factories
}

// StartWithContext starts every factory's informers.
func (f InformerFactories) StartWithContext(ctx context.Context) {
	for _, factory := range f {
		factory.StartWithContext(ctx)
	}
}

// Shutdown stops every factory's informers and waits for them.
func (f InformerFactories) Shutdown() {
	for _, factory := range f {
		factory.Shutdown()
	}
}

// WaitForCacheSync waits until every started informer has synced, or ctx
// is done.
func (f InformerFactories) WaitForCacheSync(ctx context.Context) {
	for _, factory := range f {
		factory.WaitForCacheSync(ctx.Done())
	}
}

// group returns the informers of one kind, one from each factory.
func (f InformerFactories) group(informerOf func(informers.SharedInformerFactory) cache.SharedIndexInformer) informerGroup {
	g := make(informerGroup, len(f))
	for i, factory := range f {
		g[i] = informerOf(factory)
	}
	return g
}

// newInformerFactory returns the factory of one namespace (all: empty).
func newInformerFactory(client kubernetes.Interface, o Options, namespace string) informers.SharedInformerFactory {
	opts := []informers.SharedInformerOption{informers.WithTransform(TransformForCache),
		informers.WithTweakListOptions(ignoreNamespaces(o.IgnoreNamespaces))}
	if namespace != "" {
		opts = append(opts, informers.WithNamespace(namespace))
	}
	f := informers.NewSharedInformerFactoryWithOptions(client, o.ResyncPeriod, opts...)
	// No namespace index, unlike the factory's own informers: reroll only
	// gets ConfigMaps and Secrets by name, and the index would cost an entry
	// per cached object.
	configOpts := internalinterfaces.InformerOptions{
		TweakListOptions: func(lo *metav1.ListOptions) {
			lo.LabelSelector = o.ConfigSelector
			ignoreNamespaces(o.IgnoreNamespaces)(lo)
		},
	}
	// Registering these first makes the factory hand out these informers
	// from Core().V1().ConfigMaps() and Secrets() from now on.
	// An ignored type (--resources-to-ignore) is not registered: the
	// factory then starts no informer for it.
	if !slices.Contains(o.IgnoreConfigTypes, plan.TypeConfigMap) {
		f.InformerFor(&corev1.ConfigMap{}, func(c kubernetes.Interface, _ time.Duration) cache.SharedIndexInformer {
			return coreinformers.NewConfigMapInformerWithOptions(c, namespace, configOpts)
		})
	}
	if !slices.Contains(o.IgnoreConfigTypes, plan.TypeSecret) {
		f.InformerFor(&corev1.Secret{}, func(c kubernetes.Interface, _ time.Duration) cache.SharedIndexInformer {
			return coreinformers.NewSecretInformerWithOptions(c, namespace, configOpts)
		})
	}
	if !o.SkipNamespaceObjects {
		registerNamespaceInformer(f, o, namespace)
	}
	return f
}

// registerNamespaceInformer registers the informer of Namespaces, for their
// reroll.dev annotations: all of them, or only the watched one (which RBAC
// can grant by name).
func registerNamespaceInformer(f informers.SharedInformerFactory, o Options, namespace string) {
	f.InformerFor(&corev1.Namespace{}, func(c kubernetes.Interface, _ time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewNamespaceInformerWithOptions(c, internalinterfaces.InformerOptions{
			TweakListOptions: func(lo *metav1.ListOptions) {
				if namespace != "" {
					lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", namespace).String()
					return
				}
				lo.FieldSelector = excludeField("metadata.name", o.IgnoreNamespaces)
			},
		})
	})
}

// TransformForCache is the informer transform for every object of the
// factory. It runs before an object enters the cache, so values never do:
//   - ConfigMaps: data and binaryData become one data map of per-key digests
//     (their keys are disjoint by API validation).
//   - Secrets: data becomes per-key digests held in stringData, a field the
//     API server never returns and reroll never writes back.
//   - ConfigMaps and Secrets keep only the metadata reroll reads: name,
//     namespace, resourceVersion and reroll's own annotations. Labels, other
//     annotations (Helm and kubectl add several) and the UID go.
//   - Deployments, StatefulSets and DaemonSets become a cachedWorkload.
//   - Anything else loses managedFields and kubectl's last-applied
//     annotation.
//
// The cache then costs O(keys) per object, not O(data + metadata). The
// transform mutates its argument, which client-go allows for freshly decoded
// objects, and is idempotent, as client-go asks.
func TransformForCache(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		keepConfigMetadata(&o.ObjectMeta)
		for k, v := range o.Data {
			o.Data[k] = plan.DigestValue(v)
		}
		if len(o.BinaryData) > 0 && o.Data == nil {
			o.Data = make(map[string]string, len(o.BinaryData))
		}
		for k, v := range o.BinaryData {
			o.Data[k] = plan.DigestValue(v)
		}
		o.BinaryData = nil
	case *corev1.Secret:
		keepConfigMetadata(&o.ObjectMeta)
		if len(o.Data) > 0 {
			digests := make(map[string]string, len(o.Data))
			for k, v := range o.Data {
				digests[k] = plan.DigestValue(v)
			}
			o.StringData = digests
		}
		o.Data = nil
	case *corev1.Namespace:
		*o = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Name, ResourceVersion: o.ResourceVersion,
			Labels: o.Labels, Annotations: keptAnnotations(o.Annotations)}}
	case *appsv1.Deployment:
		return newCachedWorkload(appsv1.SchemeGroupVersion.WithKind("Deployment"), o, &o.Spec.Template, plan.DeploymentStatus(o)), nil
	case *appsv1.StatefulSet:
		return newCachedWorkload(appsv1.SchemeGroupVersion.WithKind("StatefulSet"), o, &o.Spec.Template, plan.StatefulSetStatus(o)), nil
	case *appsv1.DaemonSet:
		return newCachedWorkload(appsv1.SchemeGroupVersion.WithKind("DaemonSet"), o, &o.Spec.Template, plan.DaemonSetStatus(o)), nil
	case *batchv1.CronJob:
		// A CronJob has no rollout: its next Job simply runs the new template.
		return newCachedWorkload(batchv1.SchemeGroupVersion.WithKind("CronJob"), o, &o.Spec.JobTemplate.Spec.Template, plan.RolloutStatus{Observed: true, Done: true}), nil
	case *batchv1.Job:
		// A Job has no rollout either: a roll re-creates it (jobs.go), and
		// its run is its own business. A Job a CronJob created is its
		// CronJob's, and never touched.
		w := newCachedWorkload(batchv1.SchemeGroupVersion.WithKind("Job"), o, &o.Spec.Template, plan.RolloutStatus{Observed: true, Done: true})
		w.OwnedByCronJob = plan.OwnedByCronJob(o.OwnerReferences)
		return w, nil
	case *cachedWorkload:
		// Already transformed.
	default:
		stripMetadata(obj)
	}
	return obj, nil
}

// templateTransform returns the cache transform of a custom kind k: it
// converts the pod template at k.TemplatePath to a typed PodTemplateSpec
// once and keeps a cachedWorkload, nothing else of a possibly large custom
// resource. It is idempotent.
func templateTransform(k ExtraKind) cache.TransformFunc {
	path, status := k.TemplatePath, k.Status
	if status == nil {
		status = plan.CustomStatus
	}
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil // already transformed, or a tombstone
		}
		var template corev1.PodTemplateSpec
		var templateError string
		raw, found, err := unstructured.NestedMap(u.Object, path...)
		switch {
		case err != nil:
			templateError = fmt.Sprintf("%s is not an object: %v", strings.Join(path, "."), err)
		case !found && k.WorkloadRef:
			templateError = workloadRefError(u)
		case !found:
			templateError = fmt.Sprintf("no pod template at %s", strings.Join(path, "."))
		default:
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &template); err != nil {
				templateError = fmt.Sprintf("%s is not a pod template: %v", strings.Join(path, "."), err)
			}
		}
		w := newCachedWorkload(u.GroupVersionKind(), u, &template, status(u))
		w.TemplateError, w.CanRestart = templateError, k.CanRestart
		if templateError == "" && !found {
			w.WorkloadRef, _, _ = unstructured.NestedString(u.Object, "spec", "workloadRef", "name")
		}
		return w, nil
	}
}

// workloadRefError says why an object without a pod template cannot take
// one from spec.workloadRef, or is empty when it names a Deployment.
func workloadRefError(u *unstructured.Unstructured) string {
	ref, found, _ := unstructured.NestedStringMap(u.Object, "spec", "workloadRef")
	switch {
	case !found:
		return "no pod template at spec.template, and no spec.workloadRef"
	case ref["kind"] != "Deployment" || ref["name"] == "":
		return fmt.Sprintf("spec.workloadRef names a %q; reroll reads the template of a Deployment only", ref["kind"])
	}
	return ""
}

// cachedWorkload is how reroll caches a workload of every kind, built-in or
// custom: its identity, versions and reroll's annotations, and of its pod
// template only the list of its ConfigMap and Secret references (see
// WalkPodSpec), and of its status the facts its rollout state is derived
// from (see RolloutStatus). The rest of a real workload (images, probes, resources,
// literal env values, status) is most of its size, and reroll never reads
// it, so caching it would make reroll's memory grow with spec sizes.
//
// The informers' caches therefore hold *cachedWorkload, never the API type:
// nothing may read these informers through the factory's typed listers.
type cachedWorkload struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	// References are the pod template's ConfigMap and Secret references.
	References []plan.PodReference
	// Status is what the rollout state is derived from (see progress.go).
	Status plan.RolloutStatus
	// TemplateAnnotations are Reloader's opt-in annotations on the pod
	// template, which Reloader reads when the workload has none; usually
	// nil.
	TemplateAnnotations map[string]string
	// TemplateError says why a custom workload has no usable template.
	TemplateError string
	// CanRestart: its kind can roll by a restart (Argo Rollouts).
	CanRestart bool
	// OwnedByCronJob: a Job its CronJob manages, which reroll never
	// touches.
	OwnedByCronJob bool
	// WorkloadRef names the Deployment, in the same namespace, whose pod
	// template an Argo Rollout runs (spec.workloadRef); its References are
	// then that Deployment's, read at each view (viewWorkload).
	WorkloadRef string
}

// DeepCopyObject implements runtime.Object.
func (w *cachedWorkload) DeepCopyObject() runtime.Object {
	out := &cachedWorkload{TypeMeta: w.TypeMeta, TemplateError: w.TemplateError, Status: w.Status, CanRestart: w.CanRestart, OwnedByCronJob: w.OwnedByCronJob, WorkloadRef: w.WorkloadRef}
	if w.TemplateAnnotations != nil {
		out.TemplateAnnotations = maps.Clone(w.TemplateAnnotations)
	}
	w.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if w.References != nil {
		out.References = make([]plan.PodReference, len(w.References))
		for i, r := range w.References {
			r.Keys = append([]string(nil), r.Keys...)
			out.References[i] = r
		}
	}
	return out
}

// newCachedWorkload returns the cached form of a workload of kind gvk with
// metadata m, pod template template and rollout status. Its references
// share their strings with the template.
func newCachedWorkload(gvk schema.GroupVersionKind, m metav1.Object, template *corev1.PodTemplateSpec, status plan.RolloutStatus) *cachedWorkload {
	return &cachedWorkload{
		TypeMeta: metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), Generation: m.GetGeneration(),
			Annotations: keptAnnotations(m.GetAnnotations()),
		},
		References:          plan.PodReferences(&template.Spec),
		Status:              status,
		TemplateAnnotations: reloaderOptInAnnotations(template.Annotations),
	}
}

// keepConfigMetadata reduces a ConfigMap's or Secret's metadata to what
// reroll reads: its name, namespace and resourceVersion, and its reroll.dev/
// annotations.
func keepConfigMetadata(m *metav1.ObjectMeta) {
	*m = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, ResourceVersion: m.ResourceVersion, Annotations: keptAnnotations(m.Annotations)}
}

// keptAnnotations returns the annotations of a that reroll reads, or nil if
// there are none: its own (reroll.dev/), and Reloader's (see plan.IsReloaderKey),
// on workloads, config objects and Namespaces alike.
func keptAnnotations(a map[string]string) map[string]string {
	var own map[string]string
	for k, v := range a {
		if strings.HasPrefix(k, plan.AnnotationPrefix) || plan.IsReloaderKey(k) {
			if own == nil {
				own = map[string]string{}
			}
			own[k] = v
		}
	}
	return own
}

// reloaderOptInAnnotations returns Reloader's opt-in annotations of a pod
// template, or nil if it has none.
func reloaderOptInAnnotations(a map[string]string) map[string]string {
	var kept map[string]string
	for _, k := range plan.ReloaderOptInKeys() {
		if v, ok := a[k]; ok {
			if kept == nil {
				kept = map[string]string{}
			}
			kept[k] = v
		}
	}
	return kept
}

// stripMetadata drops the metadata reroll never reads and that can dwarf the
// rest of a small object.
func stripMetadata(obj any) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return // a tombstone or a list: nothing to strip
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a != nil {
		delete(a, lastAppliedAnnotation)
	}
}
