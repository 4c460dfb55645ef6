package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/informers/internalinterfaces"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// FactoryOptions says what the informers watch.
type FactoryOptions struct {
	// Namespace limits every informer to one namespace; empty means all.
	Namespace string
	// ConfigSelector is a label selector that narrows, server-side, which
	// ConfigMaps and Secrets are watched. Empty means all.
	ConfigSelector string
	// ResyncPeriod makes workload informers replay their cache, so every
	// workload is re-checked that often. Zero disables it.
	ResyncPeriod time.Duration
}

// NewInformerFactory returns the one SharedInformerFactory reroll uses, set
// up so that nothing large is cached: every object goes through
// TransformForCache, and ConfigMaps and Secrets are watched through
// --config-selector and never resynced (a resync of config changes nothing;
// workload resyncs re-check what consumes it).
func NewInformerFactory(client kubernetes.Interface, o FactoryOptions) informers.SharedInformerFactory {
	opts := []informers.SharedInformerOption{informers.WithTransform(TransformForCache)}
	if o.Namespace != "" {
		opts = append(opts, informers.WithNamespace(o.Namespace))
	}
	f := informers.NewSharedInformerFactoryWithOptions(client, o.ResyncPeriod, opts...)
	// No namespace index, unlike the factory's own informers: reroll only
	// gets ConfigMaps and Secrets by name, and the index would cost an entry
	// per cached object.
	configOpts := internalinterfaces.InformerOptions{
		TweakListOptions: func(lo *metav1.ListOptions) {
			lo.LabelSelector = o.ConfigSelector
		},
	}
	// Registering these first makes the factory hand out these informers
	// from Core().V1().ConfigMaps() and Secrets() from now on.
	f.InformerFor(&corev1.ConfigMap{}, func(c kubernetes.Interface, _ time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewConfigMapInformerWithOptions(c, o.Namespace, configOpts)
	})
	f.InformerFor(&corev1.Secret{}, func(c kubernetes.Interface, _ time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewSecretInformerWithOptions(c, o.Namespace, configOpts)
	})
	return f
}
