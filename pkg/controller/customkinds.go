package controller

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// Custom kinds (--extra-kinds, parsed in extrakinds.go): their adapter over
// the dynamic client, and the discovery loop that starts and stops watching
// them as their CRDs come and go.

// dynamicAdapter is the workloadAdapter of a custom resource, served by the
// dynamic client and patched with a JSON merge patch (custom resources do
// not support strategic merge).
type dynamicAdapter struct {
	name   string
	gvr    schema.GroupVersionResource
	path   []string
	inf    informerGroup
	client dynamic.Interface
	// resolve reads a Deployment's template for objects that name one in
	// spec.workloadRef; nil for kinds without workloadRef.
	resolve func(namespace, name string) ([]plan.PodReference, map[string]string, bool)
}

// referencedTemplate implements templateResolver.
func (k *dynamicAdapter) referencedTemplate(namespace, name string) ([]plan.PodReference, map[string]string, bool) {
	if k.resolve == nil {
		return nil, nil, false
	}
	return k.resolve(namespace, name)
}

// groupKind implements workloadAdapter: "Kind.group".
func (k *dynamicAdapter) groupKind() string { return k.name }

// informer implements workloadAdapter.
func (k *dynamicAdapter) informer() informerGroup { return k.inf }

// groupResource implements workloadAdapter.
func (k *dynamicAdapter) groupResource() schema.GroupResource { return k.gvr.GroupResource() }

// write implements workloadAdapter with a JSON merge patch.
func (k *dynamicAdapter) write(ctx context.Context, name cache.ObjectName, w patchWrites, fieldManager string) (string, error) {
	body, err := annotationPatch(w, k.path)
	if err != nil {
		return "", err
	}
	obj, err := k.client.Resource(k.gvr).Namespace(name.Namespace).Patch(ctx, name.Name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil {
		return "", err
	}
	return obj.GetResourceVersion(), nil
}

// runningKind is a custom kind being watched.
type runningKind struct {
	adapter   *dynamicAdapter
	informers dynamicInformers
	stop      chan struct{}
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

// customKinds runs the custom kinds (--extra-kinds, and Argo Rollouts):
// it starts and stops their informers as their CRDs come and go, and
// registers their adapters with the controller through add and remove.
type customKinds struct {
	opts Options
	disc discovery.DiscoveryInterfaceWithContext
	dyn  dynamic.Interface
	// add registers a started kind with the handlers, the indexes and the
	// sync; remove unregisters a stopped one.
	add    func(ctx context.Context, a workloadAdapter) error
	remove func(a workloadAdapter)
	// deploymentTemplate reads a cached Deployment's template, for the
	// objects that run it (spec.workloadRef).
	deploymentTemplate func(namespace, name string) ([]plan.PodReference, map[string]string, bool)
}

// run watches Options.ExtraKinds through the dynamic client until ctx is
// done. It resolves each kind through memory-cached discovery every
// Options.DiscoveryRecheckPeriod: a kind that is not served yet (its CRD is
// not installed) is reported and re-checked, and watched as soon as it
// appears; a kind that stops being served is no longer watched. No restart
// is needed either way.
//
// Long: one loop body, so the states of a kind (running, missing, moved to
// another version) read side by side.
func (c *customKinds) run(ctx context.Context) {
	kinds, period := c.opts.ExtraKinds, c.opts.DiscoveryRecheckPeriod
	if len(kinds) == 0 {
		return
	}
	logger := klog.FromContext(ctx)
	cached := memory.NewMemCacheClientWithContext(c.disc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapperWithContext(cached)
	running := map[string]*runningKind{}
	defer func() {
		for arg, r := range running {
			c.stop(r)
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
			case err == nil && isRunning && r.adapter.gvr == m.Resource:
			case err == nil:
				if isRunning {
					c.stop(r)
				}
				r, err := c.start(ctx, k, m)
				if err != nil {
					logger.Error(err, "Cannot watch extra kind", "kind", k.Arg)
					continue
				}
				running[k.Arg] = r
				missing[k.Arg] = false
				logger.Info("Watching extra kind", "kind", r.adapter.name, "resource", m.Resource.String(), "templatePath", strings.Join(k.TemplatePath, "."))
			case meta.IsNoMatchError(err) && isRunning:
				logger.Info("Extra kind is no longer served; stopped watching it", "kind", k.Arg)
				c.stop(r)
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

// start starts a dynamic informer for one resolved custom kind and
// registers it with the handlers, the index and the sync.
func (c *customKinds) start(ctx context.Context, k ExtraKind, m *meta.RESTMapping) (*runningKind, error) {
	informers := newDynamicInformers(c.dyn, c.opts, c.opts.ResyncPeriod, m.Resource)
	inf := informers.informers
	if err := inf.SetTransform(templateTransform(k)); err != nil {
		return nil, err
	}
	dk := &dynamicAdapter{
		name:   m.GroupVersionKind.GroupKind().String(),
		gvr:    m.Resource,
		path:   k.TemplatePath,
		inf:    inf,
		client: c.dyn,
	}
	if k.WorkloadRef {
		dk.resolve = c.deploymentTemplate
	}
	if err := c.add(ctx, dk); err != nil {
		return nil, err
	}
	r := &runningKind{adapter: dk, informers: informers, stop: make(chan struct{})}
	informers.start(r.stop)
	return r, nil
}

// stop stops watching a custom kind and forgets it.
func (c *customKinds) stop(r *runningKind) {
	c.remove(r.adapter)
	close(r.stop)
	r.informers.shutdown()
}
