package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
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
//   - The built-in workload kinds (Kinds) become a cachedWorkload.
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
	case *cachedWorkload:
		// Already transformed.
	default:
		if w, ok := cachedForm(obj); ok {
			return w, nil
		}
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

// keepConfigMetadata reduces a ConfigMap's or Secret's metadata to what
// reroll reads: its name, namespace and resourceVersion, and its reroll.dev/
// annotations.
func keepConfigMetadata(m *metav1.ObjectMeta) {
	*m = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, ResourceVersion: m.ResourceVersion, Annotations: keptAnnotations(m.Annotations)}
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
