package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/reroll/reroll/pkg/plan"
)

// The one table of the built-in workload kinds: for each, its names, where
// its pod template is, how its progress is read, how it is cached, which
// informer watches it, and how it is patched and listed. The controller's
// cache and adapters and the kubectl plugin's snapshot all read it.

// Kind is one built-in workload kind, served by the typed Clientset.
type Kind struct {
	// Name is its --kinds name, such as "deployments".
	Name string
	// Kind is its Kind, the name the controller knows it by in queue keys,
	// logs and Events.
	Kind string
	// Resource is its group, version and resource.
	Resource schema.GroupVersionResource
	// Default: watched unless --kinds says otherwise.
	Default bool
	// templatePath is where its pod template is in the object.
	templatePath []string
	// cached returns the cached form of obj if it is of this kind.
	cached func(obj any) (*cachedWorkload, bool)
	// informer returns its shared informer from a factory.
	informer func(informers.SharedInformerFactory) cache.SharedIndexInformer
	// patch sends a strategic merge patch and returns the patched object's
	// resourceVersion.
	patch func(ctx context.Context, client kubernetes.Interface, name cache.ObjectName, body []byte, opts metav1.PatchOptions) (string, error)
	// list reads one page of its objects in namespace ("" for all), and
	// returns the token of the next page.
	list func(ctx context.Context, client kubernetes.Interface, namespace string, opts metav1.ListOptions) ([]runtime.Object, string, error)
}

// JobsKind is the --kinds name of Jobs, which reroll rolls by re-creating
// them (jobs.go); not watched by default, except with
// --reloader-annotations, as Reloader does.
const JobsKind = "jobs"

// builtinKinds is the table, built once: the cache transform reads it for
// every workload event. Nothing writes it; Kinds hands out copies.
var builtinKinds = kindTable()

// Kinds returns the built-in workload kinds, in the order --kinds lists
// them.
func Kinds() []Kind {
	return slices.Clone(builtinKinds)
}

// kindTable returns the table of the built-in kinds.
//
// Long: the table itself, one entry of a few lines per kind.
func kindTable() []Kind {
	apps, batch := appsv1.SchemeGroupVersion, batchv1.SchemeGroupVersion
	return []Kind{
		newKind("deployments", apps.WithKind("Deployment"), true, specTemplate,
			func(d *appsv1.Deployment) *cachedWorkload {
				return withSelector(newCachedWorkload(apps.WithKind("Deployment"), d, &d.Spec.Template, plan.DeploymentStatus(d)), d.Spec.Selector)
			},
			func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Apps().V1().Deployments().Informer()
			},
			func(c kubernetes.Interface, ns string) typedClient[*appsv1.Deployment, *appsv1.DeploymentList] {
				return c.AppsV1().Deployments(ns)
			}),
		newKind("statefulsets", apps.WithKind("StatefulSet"), true, specTemplate,
			func(s *appsv1.StatefulSet) *cachedWorkload {
				return withSelector(newCachedWorkload(apps.WithKind("StatefulSet"), s, &s.Spec.Template, plan.StatefulSetStatus(s)), s.Spec.Selector)
			},
			func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Apps().V1().StatefulSets().Informer()
			},
			func(c kubernetes.Interface, ns string) typedClient[*appsv1.StatefulSet, *appsv1.StatefulSetList] {
				return c.AppsV1().StatefulSets(ns)
			}),
		newKind("daemonsets", apps.WithKind("DaemonSet"), true, specTemplate,
			func(d *appsv1.DaemonSet) *cachedWorkload {
				return withSelector(newCachedWorkload(apps.WithKind("DaemonSet"), d, &d.Spec.Template, plan.DaemonSetStatus(d)), d.Spec.Selector)
			},
			func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Apps().V1().DaemonSets().Informer()
			},
			func(c kubernetes.Interface, ns string) typedClient[*appsv1.DaemonSet, *appsv1.DaemonSetList] {
				return c.AppsV1().DaemonSets(ns)
			}),
		// A CronJob's template is the one of the Jobs it creates, so a roll
		// changes its next Job and leaves running Jobs alone; and it has no
		// rollout: its next Job simply runs the new template.
		newKind("cronjobs", batch.WithKind("CronJob"), true, cronJobTemplate,
			func(c *batchv1.CronJob) *cachedWorkload {
				return newCachedWorkload(batch.WithKind("CronJob"), c, &c.Spec.JobTemplate.Spec.Template, plan.RolloutStatus{Observed: true, Done: true})
			},
			func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Batch().V1().CronJobs().Informer()
			},
			func(c kubernetes.Interface, ns string) typedClient[*batchv1.CronJob, *batchv1.CronJobList] {
				return c.BatchV1().CronJobs(ns)
			}),
		// A Job has no rollout either: a roll re-creates it (jobs.go), and
		// its run is its own business. A Job a CronJob created is its
		// CronJob's, and never touched.
		newKind(JobsKind, batch.WithKind("Job"), false, specTemplate,
			func(j *batchv1.Job) *cachedWorkload {
				w := newCachedWorkload(batch.WithKind("Job"), j, &j.Spec.Template, plan.RolloutStatus{Observed: true, Done: true})
				w.OwnedByCronJob = plan.OwnedByCronJob(j.OwnerReferences)
				return w
			},
			func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
				return f.Batch().V1().Jobs().Informer()
			},
			func(c kubernetes.Interface, ns string) typedClient[*batchv1.Job, *batchv1.JobList] {
				return c.BatchV1().Jobs(ns)
			}),
	}
}

// specTemplate is where Deployments, StatefulSets, DaemonSets and Jobs keep
// their pod template; cronJobTemplate is a CronJob's.
var (
	specTemplate    = []string{"spec", "template"}
	cronJobTemplate = []string{"spec", "jobTemplate", "spec", "template"}
)

// workloadObject is what every typed workload object is.
type workloadObject interface {
	runtime.Object
	metav1.Object
}

// withSelector sets w's pod selector and returns w.
func withSelector(w *cachedWorkload, s *metav1.LabelSelector) *cachedWorkload {
	w.Selector = selectorOf(s)
	return w
}

// typedClient is what a kind's typed client does for reroll.
type typedClient[T, L any] interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
}

// workloadList is what every typed list of workloads is.
type workloadList interface {
	runtime.Object
	metav1.ListInterface
}

// newKind returns the Kind of objects of type T, listed as L: cachedOf
// caches one, and informerOf and clientOf reach its informer and client.
func newKind[T workloadObject, L workloadList](name string, gvk schema.GroupVersionKind, def bool, path []string,
	cachedOf func(T) *cachedWorkload, informerOf func(informers.SharedInformerFactory) cache.SharedIndexInformer,
	clientOf func(kubernetes.Interface, string) typedClient[T, L]) Kind {
	return Kind{
		Name: name, Kind: gvk.Kind, Resource: gvk.GroupVersion().WithResource(name), Default: def, templatePath: path,
		cached: func(obj any) (*cachedWorkload, bool) {
			o, ok := obj.(T)
			if !ok {
				return nil, false
			}
			return cachedOf(o), true
		},
		informer: informerOf,
		patch: func(ctx context.Context, c kubernetes.Interface, n cache.ObjectName, body []byte, opts metav1.PatchOptions) (string, error) {
			obj, err := clientOf(c, n.Namespace).Patch(ctx, n.Name, types.StrategicMergePatchType, body, opts)
			if err != nil {
				return "", err
			}
			return obj.GetResourceVersion(), nil
		},
		list: func(ctx context.Context, c kubernetes.Interface, ns string, opts metav1.ListOptions) ([]runtime.Object, string, error) {
			l, err := clientOf(c, ns).List(ctx, opts)
			if err != nil {
				return nil, "", err
			}
			objs, err := meta.ExtractList(l)
			return objs, l.GetContinue(), err
		},
	}
}

// List reads one page of the kind's objects in namespace ("" for all) and
// returns them with the token of the next page ("" for the last).
func (k Kind) List(ctx context.Context, client kubernetes.Interface, namespace string, opts metav1.ListOptions) ([]runtime.Object, string, error) {
	return k.list(ctx, client, namespace, opts)
}

// KindNamed returns the built-in kind of a --kinds name.
func KindNamed(name string) (Kind, bool) {
	i := slices.IndexFunc(builtinKinds, func(k Kind) bool { return k.Name == name })
	if i < 0 {
		return Kind{}, false
	}
	return builtinKinds[i], true
}

// DefaultKindNames returns the --kinds names watched by default.
func DefaultKindNames() []string {
	var names []string
	for _, k := range builtinKinds {
		if k.Default {
			names = append(names, k.Name)
		}
	}
	return names
}

// KindNames returns every name --kinds takes: the built-in kinds, and Argo
// Rollouts.
func KindNames() []string {
	var names []string
	for _, k := range builtinKinds {
		names = append(names, k.Name)
	}
	return append(names, ArgoRolloutsKind)
}

// cachedForm returns the cached form of a built-in workload object, or
// false for any other object.
func cachedForm(obj any) (*cachedWorkload, bool) {
	for _, k := range builtinKinds {
		if w, ok := k.cached(obj); ok {
			return w, true
		}
	}
	return nil, false
}

// unknownKindError is the error of a --kinds name that is not a built-in
// kind.
func unknownKindError(name string) error {
	var names []string
	for _, k := range builtinKinds {
		names = append(names, k.Name)
	}
	return fmt.Errorf("unknown kind %q: the built-in kinds are %s", name, strings.Join(names, ", "))
}
