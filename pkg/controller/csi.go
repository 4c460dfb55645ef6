package controller

import (
	"context"
	"fmt"
	"maps"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/reroll/reroll/pkg/plan"
)

// The Secrets Store CSI driver (--secrets-store-csi). A workload's CSI
// volume mounts the objects a SecretProviderClass names (Vault, AWS, Azure
// or GCP secrets); for each pod, the driver reports in a
// SecretProviderClassPodStatus the id and version of every object it
// mounted, and rotates them there. reroll treats each class as one more
// consumed object (plan.TypeSecretProviderClass) whose content is, for each
// object id, the newest version any of the class's pods in the namespace
// reports: a rotation changes it once, and the new pods of the roll, which
// report that same version, change nothing. It caches of each
// SecretProviderClassPodStatus only its pod, its class, and each object's id
// with a digest of its version.

// csiSource is the Secrets Store CSI driver as a source of consumed
// objects: it watches the driver's pod statuses while their CRD is served,
// answers what each class's pods mounted, and calls changed when that
// changes.
type csiSource struct {
	opts Options
	// watch holds the statuses' informer while it runs.
	watch csiWatch
	disc  discovery.DiscoveryInterfaceWithContext
	dyn   dynamic.Interface
	// kinds are the workload kinds watched, to map a status's pod to one.
	kinds *kindRegistry
	// changed enqueues the consumers of a class whose versions changed.
	changed func(ctx context.Context, namespace string, ref plan.ConfigRef)
	warn    warnFunc
}

// providerClass returns the view of SecretProviderClass name in namespace,
// or false while none of its pods reported a version (or the driver is not
// watched).
func (c *csiSource) providerClass(namespace, name string) (metav1.Object, bool) {
	inf := c.watch.informer()
	if inf == nil {
		return nil, false
	}
	return providerClassOf(inf.GetIndexer(), namespace, name)
}

// run watches the driver's SecretProviderClassPodStatuses (with
// --secrets-store-csi) until ctx is done: while their CRD is served,
// re-checked every Options.DiscoveryRecheckPeriod, so a driver installed
// later is picked up and a cluster without it costs one discovery request
// a period.
func (c *csiSource) run(ctx context.Context) {
	if !c.opts.SecretsStoreCSI {
		return
	}
	disc, dyn := c.disc, c.dyn
	logger := klog.FromContext(ctx)
	var stop chan struct{}
	var informers dynamicInformers
	halt := func() {
		if stop != nil {
			c.watch.setInformer(nil)
			close(stop)
			informers.shutdown()
			stop = nil
		}
	}
	defer halt()
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		served, err := providerClassesServed(ctx, disc)
		switch {
		case err != nil:
			logger.Error(err, "Discovery failed; re-checking the Secrets Store CSI driver later")
		case served && stop == nil:
			informers = newDynamicInformers(dyn, c.opts, 0, ProviderClassPodStatuses)
			inf := informers.informers
			if err := c.watchProviderClasses(ctx, inf); err != nil {
				logger.Error(err, "Cannot watch the Secrets Store CSI driver's pod statuses")
				return
			}
			stop = make(chan struct{})
			informers.start(stop)
			c.watch.setInformer(inf)
			logger.Info("Watching the Secrets Store CSI driver's pod statuses")
		case !served && stop != nil:
			logger.Info("The Secrets Store CSI driver's CRD is no longer served; stopped watching it")
			halt()
		}
	}, c.opts.DiscoveryRecheckPeriod)
}

// providerClassesServed reports whether the driver's pod statuses are
// served.
func providerClassesServed(ctx context.Context, disc discovery.DiscoveryInterfaceWithContext) (bool, error) {
	list, err := disc.ServerResourcesForGroupVersionWithContext(ctx, ProviderClassPodStatuses.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Name == ProviderClassPodStatuses.Resource {
			return true, nil
		}
	}
	return false, nil
}

// watchProviderClasses sets up the statuses' informer: the transform, the
// index by class, and the handler that enqueues a class's consumers when
// the versions its pods mounted change.
func (c *csiSource) watchProviderClasses(ctx context.Context, inf informerGroup) error {
	if err := inf.SetTransform(providerClassTransform); err != nil {
		return err
	}
	if err := inf.AddIndexers(cache.Indexers{providerClassIndex: providerClassIndexFunc}); err != nil {
		return err
	}
	changed := func(p *providerClassPod) {
		c.changed(ctx, p.Namespace, plan.ConfigRef{Type: plan.TypeSecretProviderClass, Name: p.Class})
	}
	logger := klog.FromContext(ctx)
	err := inf.AddEventHandlerWithOptions(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, isInInitialList bool) {
			if p, ok := obj.(*providerClassPod); ok {
				c.warnUnmapped(ctx, p)
				if !isInInitialList {
					changed(p)
				}
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*providerClassPod)
			n, ok2 := newObj.(*providerClassPod)
			if ok1 && ok2 && (!maps.Equal(o.Versions, n.Versions) || o.Class != n.Class) {
				changed(n)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*providerClassPod); ok {
				changed(p)
			}
		},
	}, cache.HandlerOptions{Logger: &logger})
	return err
}

// warnUnmapped reports, with a Warning Event on a status and a log line, a
// status whose pod reroll cannot map to a workload: none of the workloads
// of its namespace that reroll watches mounts its class and names the pod
// (a pod's name starts with its workload's).
func (c *csiSource) warnUnmapped(ctx context.Context, p *providerClassPod) {
	ref := plan.ConfigRef{Type: plan.TypeSecretProviderClass, Name: p.Class}
	for a, cw := range c.kinds.inNamespace(p.Namespace) {
		w, err := viewWorkload(a, cw)
		if err == nil && strings.HasPrefix(p.Pod, w.meta.GetName()+"-") && mountsClass(w, ref) {
			return
		}
	}
	regarding := &unstructured.Unstructured{}
	regarding.SetGroupVersionKind(ProviderClassPodStatuses.GroupVersion().WithKind("SecretProviderClassPodStatus"))
	regarding.SetName(p.Name)
	regarding.SetNamespace(p.Namespace)
	regarding.SetUID(p.UID)
	c.warn(ctx, regarding, plan.ReasonUnmappedPod, "Map", fmt.Sprintf(
		"pod %s mounts SecretProviderClass %s, and no workload reroll watches (--kinds, --extra-kinds) runs that pod with that class; its rotations roll nothing", p.Pod, p.Class))
}

// mountsClass reports whether a workload's pod template mounts ref.
func mountsClass(w workload, ref plan.ConfigRef) bool {
	for _, r := range w.references {
		if r.Ref == ref {
			return true
		}
	}
	return false
}
