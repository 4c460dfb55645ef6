package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/plan"
)

// pageSize is the limit of each LIST: large clusters are read in pages,
// never with a watch.
const pageSize = 500

// forbidden says which permission a forbidden read needed, as RBAC names
// it.
type forbidden struct {
	verb, resource, namespace, name string
}

// Error implements error.
func (f forbidden) Error() string {
	s := "missing permission: " + f.verb + " " + f.resource
	if f.name != "" {
		s += " " + f.name
	}
	if f.namespace != "" {
		return s + " in namespace " + f.namespace
	}
	return s + " in all namespaces"
}

// asForbidden turns a Forbidden API error into a forbidden naming the
// permission; other errors pass through.
func asForbidden(err error, verb, resource, namespace, name string) error {
	if apierrors.IsForbidden(err) {
		return forbidden{verb, resource, namespace, name}
	}
	return err
}

// snapshot reads what reroll would cache, in namespace ("" for all), into
// an Inspector: Namespaces, ConfigMaps, Secrets, the built-in workloads and
// the extra kinds. Reads that are forbidden leave their objects out and say
// so in the settings' Unreadable, so that nothing is guessed.
func snapshot(ctx context.Context, o *options, cfg *rest.Config, client kubernetes.Interface, namespace string) (*controller.Inspector, error) {
	s := controller.InspectSettings{AutoAll: o.autoAll, ReloaderAnnotations: o.reloaderAnnotations, Waves: o.parsedWaves, RolloutWindow: o.parsedWindow, Unreadable: map[string]string{}}
	if key, err := readHashKey(ctx, o, client); err != nil {
		s.Unreadable["HashKey"] = err.Error()
	} else {
		s.HashKey = &key
	}
	// Objects go into the inspector page by page, digested at once.
	in := controller.NewInspector(s)
	// Each resource is read on its own goroutine, page by page: the API
	// server serializes one page while the plugin digests another.
	resources := append([]string{"configmaps", "secrets"}, controller.BuiltinResources()...)
	errs := make([]error, len(resources))
	var wg sync.WaitGroup
	for n, r := range resources {
		wg.Go(func() { errs[n] = listResource(ctx, client, r, namespace, in.Add) })
	}
	// Namespaces only for their pause annotation: best effort.
	wg.Go(func() { _ = readNamespaces(ctx, client, namespace, in.Add) })
	wg.Wait()
	for n, err := range errs {
		var f forbidden
		switch {
		case err == nil:
		case errors.As(err, &f) && resources[n] == "configmaps":
			in.MarkUnreadable("ConfigMap", f.Error())
		case errors.As(err, &f) && resources[n] == "secrets":
			in.MarkUnreadable("Secret", f.Error())
		default:
			return nil, err
		}
	}
	return in, addExtraKinds(ctx, o, cfg, in, namespace)
}

// readHashKey reads reroll's hash key, from --controller-namespace or else
// from the namespace findController finds, or says which permission is
// missing.
func readHashKey(ctx context.Context, o *options, client kubernetes.Interface) (plan.HashKey, error) {
	ns := o.controllerNamespace
	if ns == "" {
		found, err := findController(ctx, o, client)
		if err != nil {
			return plan.HashKey{}, err
		}
		ns = found
	}
	secret, err := client.CoreV1().Secrets(ns).Get(ctx, o.hashKeySecret, metav1.GetOptions{})
	if err != nil {
		return plan.HashKey{}, asForbidden(err, "get", "secrets", ns, o.hashKeySecret)
	}
	return controller.HashKeyFromSecret(secret)
}

// defaultControllerNamespace is where the manifests and the chart's
// default install reroll, tried when Secrets cannot be listed.
const defaultControllerNamespace = "reroll-system"

// findController returns reroll's namespace: the one namespace whose Secret
// named --hash-key-secret carries the labels reroll gives its hash key
// (whether it runs from the manifests, the chart or make run). Several, or
// none, is an error in one line that says what to pass.
func findController(ctx context.Context, o *options, client kubernetes.Interface) (string, error) {
	list, err := client.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: controller.HashKeyLabelSelector})
	if apierrors.IsForbidden(err) {
		return defaultControllerNamespace, nil // cannot look: try the usual place
	}
	if err != nil {
		return "", err
	}
	var namespaces []string
	for _, s := range list.Items {
		if s.Name == o.hashKeySecret {
			namespaces = append(namespaces, s.Namespace)
		}
	}
	switch len(namespaces) {
	case 0:
		return "", fmt.Errorf("found no reroll: no Secret %s labelled %s in any namespace; pass --controller-namespace=NAMESPACE", o.hashKeySecret, controller.HashKeyLabelSelector)
	case 1:
		return namespaces[0], nil
	}
	slices.Sort(namespaces)
	return "", fmt.Errorf("found reroll in namespaces %s; pass --controller-namespace with the one to ask", strings.Join(namespaces, ", "))
}

// readNamespaces reads the Namespace namespace, or every Namespace, into
// sink.
func readNamespaces(ctx context.Context, client kubernetes.Interface, namespace string, sink func(runtime.Object) error) error {
	if namespace != "" {
		ns, err := client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return sink(ns)
	}
	return listResource(ctx, client, "namespaces", "", sink)
}

// listPages lists in pages of pageSize through list, hands each page's
// objects (from items) to sink as the page arrives, so that no more than a
// page of values is held at once, and turns Forbidden into the missing
// permission (verb list on resource in namespace).
func listPages[L any](ctx context.Context, resource, namespace string, list func(context.Context, metav1.ListOptions) (L, error),
	items func(L) ([]runtime.Object, string), sink func(runtime.Object) error) error {
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		page, err := list(ctx, opts)
		if err != nil {
			return asForbidden(err, "list", resource, namespace, "")
		}
		objs, next := items(page)
		for _, obj := range objs {
			if err := sink(obj); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		opts.Continue = next
	}
}

// objects returns pointers to a list's items as runtime.Objects.
func objects[T any, P interface {
	*T
	runtime.Object
}](items []T) []runtime.Object {
	out := make([]runtime.Object, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}

// listResource lists one of the resources the plugin reads into sink.
func listResource(ctx context.Context, client kubernetes.Interface, resource, ns string, sink func(runtime.Object) error) error {
	switch resource {
	case "configmaps":
		return listPages(ctx, resource, ns, client.CoreV1().ConfigMaps(ns).List,
			func(l *corev1.ConfigMapList) ([]runtime.Object, string) { return objects(l.Items), l.Continue }, sink)
	case "secrets":
		return listPages(ctx, resource, ns, client.CoreV1().Secrets(ns).List,
			func(l *corev1.SecretList) ([]runtime.Object, string) { return objects(l.Items), l.Continue }, sink)
	case "namespaces":
		return listPages(ctx, resource, "", client.CoreV1().Namespaces().List,
			func(l *corev1.NamespaceList) ([]runtime.Object, string) { return objects(l.Items), l.Continue }, sink)
	case "deployments":
		return listPages(ctx, resource, ns, client.AppsV1().Deployments(ns).List,
			func(l *appsv1.DeploymentList) ([]runtime.Object, string) { return objects(l.Items), l.Continue }, sink)
	case "statefulsets":
		return listPages(ctx, resource, ns, client.AppsV1().StatefulSets(ns).List,
			func(l *appsv1.StatefulSetList) ([]runtime.Object, string) { return objects(l.Items), l.Continue }, sink)
	case "daemonsets":
		return listPages(ctx, resource, ns, client.AppsV1().DaemonSets(ns).List,
			func(l *appsv1.DaemonSetList) ([]runtime.Object, string) { return objects(l.Items), l.Continue }, sink)
	case "cronjobs":
		return listPages(ctx, resource, ns, client.BatchV1().CronJobs(ns).List,
			func(l *batchv1.CronJobList) ([]runtime.Object, string) { return objects(l.Items), l.Continue }, sink)
	case "events":
		return listPages(ctx, "events.events.k8s.io", ns, client.EventsV1().Events(ns).List,
			func(l *eventsv1.EventList) ([]runtime.Object, string) { return objects(l.Items), l.Continue }, sink)
	}
	return fmt.Errorf("cannot list %s", resource)
}

// addExtraKinds lists the custom kinds of --extra-kinds through the dynamic
// client, at the version given or the preferred one.
func addExtraKinds(ctx context.Context, o *options, cfg *rest.Config, in *controller.Inspector, namespace string) error {
	kinds := o.parsedExtraKinds
	if len(kinds) == 0 {
		return nil
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, k := range kinds {
		gvr := k.GroupResource().WithVersion("")
		if k.GVR != nil && k.GVR.Version != "" {
			gvr = *k.GVR
		}
		list, err := dyn.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{Limit: pageSize})
		if err != nil {
			return fmt.Errorf("%s: %w", k.Arg, asForbidden(err, "list", gvr.GroupResource().String(), namespace, ""))
		}
		for i := range list.Items {
			in.AddCustom(&list.Items[i], k)
		}
	}
	return nil
}

// rolledEvents returns reroll's Rolled Events in namespace ("" for all),
// oldest first, or an error naming the missing permission.
func rolledEvents(ctx context.Context, client kubernetes.Interface, namespace string) ([]eventsv1.Event, error) {
	var out []eventsv1.Event
	err := listResource(ctx, client, "events", namespace, func(obj runtime.Object) error {
		e := *obj.(*eventsv1.Event)
		if e.Reason == plan.ReasonRolled && strings.HasPrefix(e.ReportingController, "reroll") {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b eventsv1.Event) int { return eventTime(a).Compare(eventTime(b).Time) })
	return out, nil
}

// lastRolls returns, per "Kind/namespace/name", reroll's latest Rolled
// Event, or an error naming the missing permission.
func lastRolls(ctx context.Context, client kubernetes.Interface, namespace string) (map[string]eventsv1.Event, error) {
	events, err := rolledEvents(ctx, client, namespace)
	if err != nil {
		return nil, err
	}
	out := map[string]eventsv1.Event{}
	for _, e := range events {
		k := e.Regarding.Kind + "/" + e.Regarding.Namespace + "/" + e.Regarding.Name
		out[k] = e // oldest first: the last one wins
	}
	return out, nil
}

// eventTime returns when an Event last happened.
func eventTime(e eventsv1.Event) metav1.Time {
	switch {
	case e.Series != nil:
		return metav1.NewTime(e.Series.LastObservedTime.Time)
	case !e.EventTime.IsZero():
		return metav1.NewTime(e.EventTime.Time)
	}
	return e.DeprecatedLastTimestamp
}
