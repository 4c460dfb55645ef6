package controller

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// ExtraKind is a custom resource with a pod template that reroll rolls
// through the dynamic client, as given to --extra-kinds.
type ExtraKind struct {
	// Arg is the item as given, for messages.
	Arg string
	// GVR is the resource.version.group reading of Arg, if it has one.
	GVR *schema.GroupVersionResource
	// GR is the resource.group reading of Arg (preferred version).
	GR schema.GroupResource
	// TemplatePath is where the pod template is, such as [spec template].
	TemplatePath []string
}

// versionPattern matches Kubernetes API versions such as v1 or v2beta3.
var versionPattern = regexp.MustCompile(`^v[0-9]+((alpha|beta)[0-9]+)?$`)

// GroupResource is the kind's group and resource for RBAC checks, before
// discovery can say which reading of Arg is served: resource.version.group
// when the middle part looks like a version, else resource.group.
func (k ExtraKind) GroupResource() schema.GroupResource {
	if k.GVR != nil && versionPattern.MatchString(k.GVR.Version) {
		return k.GVR.GroupResource()
	}
	return k.GR
}

// ParseExtraKinds parses a comma-separated --extra-kinds value: items of the
// form resource.version.group or resource.group (the preferred version),
// each optionally followed by ":" and the dotted path of the pod template
// (default spec.template). An empty value means none.
func ParseExtraKinds(value string) ([]ExtraKind, error) {
	if value == "" {
		return nil, nil
	}
	var kinds []ExtraKind
	var seen []string
	for _, item := range strings.Split(value, ",") {
		resource, path, hasPath := strings.Cut(item, ":")
		if resource == "" || strings.TrimSpace(item) != item {
			return nil, fmt.Errorf("--extra-kinds: item %q is empty or has spaces", item)
		}
		for _, part := range strings.Split(resource, ".") {
			if msgs := validation.IsDNS1123Label(part); len(msgs) > 0 {
				return nil, fmt.Errorf("--extra-kinds: %q is not resource.version.group or resource.group: %q %s", item, part, strings.Join(msgs, ", "))
			}
		}
		if !strings.Contains(resource, ".") {
			return nil, fmt.Errorf("--extra-kinds: %q has no group; write resource.group or resource.version.group", item)
		}
		if !hasPath {
			path = "spec.template"
		}
		segments := strings.Split(path, ".")
		for _, s := range segments {
			if s == "" || strings.ContainsAny(s, " \t\n/") {
				return nil, fmt.Errorf("--extra-kinds: %q has an invalid template path %q", item, path)
			}
		}
		if slices.Contains(seen, resource) {
			return nil, fmt.Errorf("--extra-kinds: %q is listed twice", resource)
		}
		seen = append(seen, resource)
		gvr, gr := schema.ParseResourceArg(resource)
		kinds = append(kinds, ExtraKind{Arg: item, GVR: gvr, GR: gr, TemplatePath: segments})
	}
	return kinds, nil
}

// templateTransform returns the cache transform of a custom kind: it
// converts the pod template at path to a typed PodTemplateSpec once and
// keeps a cachedWorkload, nothing else of a possibly large custom resource.
// It is idempotent.
func templateTransform(path []string) cache.TransformFunc {
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
		case !found:
			templateError = fmt.Sprintf("no pod template at %s", strings.Join(path, "."))
		default:
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &template); err != nil {
				templateError = fmt.Sprintf("%s is not a pod template: %v", strings.Join(path, "."), err)
			}
		}
		w := newCachedWorkload(u.GroupVersionKind(), u, &template.Spec)
		w.TemplateError = templateError
		return w, nil
	}
}

// dynamicKind is the workloadKind of a custom resource, served by the
// dynamic client and patched with a JSON merge patch (custom resources do
// not support strategic merge).
type dynamicKind struct {
	name   string
	gvr    schema.GroupVersionResource
	path   []string
	inf    cache.SharedIndexInformer
	client dynamic.Interface
}

// kind implements workloadKind: "Kind.group", unique across groups.
func (k *dynamicKind) kind() string { return k.name }

// informer implements workloadKind.
func (k *dynamicKind) informer() cache.SharedIndexInformer { return k.inf }

// templatePath implements workloadKind.
func (k *dynamicKind) templatePath() []string { return k.path }

// groupResource implements workloadKind.
func (k *dynamicKind) groupResource() schema.GroupResource { return k.gvr.GroupResource() }

// patch implements workloadKind.
func (k *dynamicKind) patch(ctx context.Context, name cache.ObjectName, body []byte, opts metav1.PatchOptions) (string, error) {
	obj, err := k.client.Resource(k.gvr).Namespace(name.Namespace).Patch(ctx, name.Name, types.MergePatchType, body, opts)
	if err != nil {
		return "", err
	}
	return obj.GetResourceVersion(), nil
}

// runningKind is a custom kind being watched.
type runningKind struct {
	kind    *dynamicKind
	factory dynamicinformer.DynamicSharedInformerFactory
	stop    chan struct{}
}

// resolveExtraKind maps an ExtraKind to its served resource and kind.
func resolveExtraKind(ctx context.Context, mapper meta.RESTMapperWithContext, k ExtraKind) (*meta.RESTMapping, error) {
	var gvk schema.GroupVersionKind
	var err error
	if k.GVR != nil {
		gvk, err = mapper.KindForWithContext(ctx, *k.GVR)
	}
	if k.GVR == nil || meta.IsNoMatchError(err) {
		gvk, err = mapper.KindForWithContext(ctx, k.GR.WithVersion(""))
	}
	if err != nil {
		return nil, err
	}
	m, err := mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return nil, fmt.Errorf("%s is cluster-scoped; only namespaced kinds can consume ConfigMaps and Secrets", k.Arg)
	}
	return m, nil
}

// RunExtraKinds watches the custom kinds through the dynamic client until
// ctx is done. It resolves each kind through memory-cached discovery every
// period: a kind that is not served yet (its CRD is not installed) is
// reported and re-checked, and watched as soon as it appears; a kind that
// stops being served is no longer watched. No restart is needed either way.
func (c *Controller) RunExtraKinds(ctx context.Context, disc discovery.DiscoveryInterfaceWithContext, dyn dynamic.Interface, kinds []ExtraKind, namespace string, period time.Duration) {
	if len(kinds) == 0 {
		return
	}
	logger := klog.FromContext(ctx)
	cached := memory.NewMemCacheClientWithContext(disc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapperWithContext(cached)
	running := map[string]*runningKind{}
	defer func() {
		for arg, r := range running {
			c.stopExtraKind(r)
			delete(running, arg)
		}
	}()
	missing := map[string]bool{}
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		mapper.ResetWithContext(ctx) // re-discover: CRDs come and go
		// Refresh explicitly and skip the round if discovery fails: the
		// deferred mapper retries a lookup for as long as its cache is not
		// fresh, which would never end while discovery is failing.
		if _, err := cached.ServerGroupsWithContext(ctx); err != nil || !cached.FreshWithContext(ctx) {
			logger.Error(err, "Discovery failed; re-checking extra kinds later", "every", period)
			return
		}
		for _, k := range kinds {
			m, err := resolveExtraKind(ctx, mapper, k)
			r, isRunning := running[k.Arg]
			switch {
			case err == nil && isRunning && r.kind.gvr == m.Resource:
			case err == nil:
				if isRunning {
					c.stopExtraKind(r)
				}
				r, err := c.startExtraKind(ctx, dyn, k, m, namespace)
				if err != nil {
					logger.Error(err, "Cannot watch extra kind", "kind", k.Arg)
					continue
				}
				running[k.Arg] = r
				missing[k.Arg] = false
				logger.Info("Watching extra kind", "kind", r.kind.name, "resource", m.Resource.String(), "templatePath", strings.Join(k.TemplatePath, "."))
			case meta.IsNoMatchError(err) && isRunning:
				logger.Info("Extra kind is no longer served; stopped watching it", "kind", k.Arg)
				c.stopExtraKind(r)
				delete(running, k.Arg)
				missing[k.Arg] = true
			case meta.IsNoMatchError(err):
				if !missing[k.Arg] {
					logger.Info("Warning: extra kind is not served (is its CRD installed?); re-checking", "kind", k.Arg, "every", period)
					missing[k.Arg] = true
				}
			default:
				logger.Error(err, "Resolving extra kind", "kind", k.Arg)
			}
		}
	}, period)
}

// startExtraKind starts a dynamic informer for one resolved custom kind and
// registers it with the handlers, the index and the sync.
func (c *Controller) startExtraKind(ctx context.Context, dyn dynamic.Interface, k ExtraKind, m *meta.RESTMapping, namespace string) (*runningKind, error) {
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, c.opts.ResyncPeriod, namespace, nil)
	inf := factory.ForResource(m.Resource).Informer()
	if err := inf.SetTransform(templateTransform(k.TemplatePath)); err != nil {
		return nil, err
	}
	dk := &dynamicKind{
		name:   m.GroupVersionKind.GroupKind().String(),
		gvr:    m.Resource,
		path:   k.TemplatePath,
		inf:    inf,
		client: dyn,
	}
	logger := klog.FromContext(ctx)
	if err := c.addWorkloadKind(ctx, dk, cache.HandlerOptions{Logger: &logger}); err != nil {
		return nil, err
	}
	r := &runningKind{kind: dk, factory: factory, stop: make(chan struct{})}
	factory.Start(r.stop)
	return r, nil
}

// stopExtraKind stops watching a custom kind and forgets it.
func (c *Controller) stopExtraKind(r *runningKind) {
	c.removeWorkloadKind(r.kind)
	close(r.stop)
	r.factory.Shutdown()
}
