package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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
// an Inspector that decides with reroll's published settings and the
// plugin's overrides (see settingsOf): Namespaces, the ConfigMaps and
// Secrets reroll watches, the workloads of the kinds it watches, and the
// Secrets Store CSI driver's pod statuses. Reads that are forbidden leave
// their objects out and say so in the settings' Unreadable, so that nothing
// is guessed.
func snapshot(ctx context.Context, o *options, cfg *rest.Config, client kubernetes.Interface, namespace string) (*controller.Inspector, error) {
	s, err := settingsOf(ctx, o, client)
	if err != nil {
		return nil, err
	}
	// Objects go into the inspector page by page, digested at once.
	in := controller.NewInspector(s)
	d := s.Decisions
	// Each resource is read on its own goroutine, page by page: the API
	// server serializes one page while the plugin digests another.
	lists := map[string]func(context.Context) error{}
	for typ, resource := range map[plan.ConfigType]string{plan.TypeConfigMap: "configmaps", plan.TypeSecret: "secrets"} {
		if !slices.Contains(d.IgnoreConfigTypes, typ) {
			lists[resource] = func(ctx context.Context) error {
				return listConfig(ctx, client, resource, namespace, d.ConfigSelector, in.Add)
			}
		}
	}
	kinds := d.Kinds
	if kinds == nil {
		kinds = controller.DefaultKindNames()
	}
	for _, name := range kinds {
		if k, ok := controller.KindNamed(name); ok {
			lists[name] = func(ctx context.Context) error {
				return listPages(ctx, name, namespace, func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
					return k.List(ctx, client, namespace, opts)
				}, in.Add)
			}
		}
	}
	errs := listAll(ctx, lists, func(ctx context.Context) error { return readNamespaces(ctx, client, namespace, in.Add) })
	for name, err := range errs {
		var f forbidden
		switch {
		case err == nil:
		case errors.As(err, &f) && name == "configmaps":
			in.MarkUnreadable("ConfigMap", f.Error())
		case errors.As(err, &f) && name == "secrets":
			in.MarkUnreadable("Secret", f.Error())
		default:
			return nil, err
		}
	}
	if err := addDynamic(ctx, d, cfg, in, namespace); err != nil {
		return nil, err
	}
	return in, addBakingPods(ctx, client, in)
}

// addBakingPods lists the pods of the workloads whose bake may not be over
// (Inspector.PodQueries), so that their bake is judged as the controller
// judges it. Pods the user may not list are left out: the bake is then
// judged from the workloads' status alone.
func addBakingPods(ctx context.Context, client kubernetes.Interface, in *controller.Inspector) error {
	for _, q := range in.PodQueries() {
		list, err := client.CoreV1().Pods(q.Namespace).List(ctx, metav1.ListOptions{LabelSelector: q.Selector})
		if apierrors.IsForbidden(err) {
			return nil
		}
		if err != nil {
			return err
		}
		for i := range list.Items {
			if err := in.AddPod(&list.Items[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// listAll runs every list of lists at once and returns their errors, by
// name; best, run beside them, is a list whose error does not matter (the
// Namespaces, only for their annotations and labels).
func listAll(ctx context.Context, lists map[string]func(context.Context) error, best func(context.Context) error) map[string]error {
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, list := range lists {
		wg.Go(func() {
			err := list(ctx)
			mu.Lock()
			defer mu.Unlock()
			errs[name] = err
		})
	}
	wg.Go(func() { _ = best(ctx) })
	wg.Wait()
	return errs
}

// settingsOf returns what the inspection shares with reroll: its hash key
// and decision settings, read from its hash key Secret (the settings reroll
// published there, with the plugin's overrides on top), and says on
// o.stderr, in one line, which settings it decides with when they are not
// exactly reroll's.
func settingsOf(ctx context.Context, o *options, client kubernetes.Interface) (controller.InspectSettings, error) {
	s := controller.InspectSettings{Unreadable: map[string]string{}}
	secret, err := readHashKeySecret(ctx, o, client)
	var published map[string]string
	var why string
	switch {
	case err != nil:
		s.Unreadable["HashKey"] = err.Error()
		why = "cannot read reroll's settings: " + err.Error()
	default:
		if key, err := controller.HashKeyFromSecret(secret); err != nil {
			s.Unreadable["HashKey"] = err.Error()
		} else {
			s.HashKey = &key
		}
		value, ok := secret.Annotations[controller.AnnotationSettings]
		if !ok {
			why = fmt.Sprintf("reroll in namespace %s publishes no settings on Secret %s (an older reroll?)", secret.Namespace, secret.Name)
		} else if published, err = controller.ReadPublishedDecisions(value); err != nil {
			why = err.Error()
		}
	}
	d, notes, err := decisionsOf(published, o.overrides)
	if err != nil {
		return s, err
	}
	s.Decisions = d
	switch {
	case why != "":
		fmt.Fprintf(o.stderr, "kubectl reroll: %s; deciding with the defaults%s\n", why, joinNotes(", and ", notes))
	case len(notes) > 0:
		fmt.Fprintf(o.stderr, "kubectl reroll: deciding with reroll's settings, except %s\n", strings.Join(notes, ", "))
	}
	return s, nil
}

// joinNotes returns the notes after prefix, or "" for none.
func joinNotes(prefix string, notes []string) string {
	if len(notes) == 0 {
		return ""
	}
	return prefix + strings.Join(notes, ", ")
}

// readHashKeySecret reads reroll's hash key Secret, from
// --controller-namespace or else from the namespace findController finds,
// or says which permission is missing.
func readHashKeySecret(ctx context.Context, o *options, client kubernetes.Interface) (*corev1.Secret, error) {
	ns := o.controllerNamespace
	if ns == "" {
		found, err := findController(ctx, o, client)
		if err != nil {
			return nil, err
		}
		ns = found
	}
	secret, err := client.CoreV1().Secrets(ns).Get(ctx, o.hashKeySecret, metav1.GetOptions{})
	if err != nil {
		return nil, asForbidden(err, "get", "secrets", ns, o.hashKeySecret)
	}
	return secret, nil
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

// listPages lists in pages of pageSize through list, hands each page's
// objects to sink as the page arrives, so that no more than a page of
// values is held at once, and turns Forbidden into the missing permission
// (verb list on resource in namespace).
func listPages(ctx context.Context, resource, namespace string, list func(context.Context, metav1.ListOptions) ([]runtime.Object, string, error),
	sink func(runtime.Object) error) error {
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		objs, next, err := list(ctx, opts)
		if err != nil {
			return asForbidden(err, "list", resource, namespace, "")
		}
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

// listPage returns a list's items and the token of its next page.
func listPage(l interface {
	runtime.Object
	metav1.ListInterface
}) ([]runtime.Object, string, error) {
	objs, err := meta.ExtractList(l)
	return objs, l.GetContinue(), err
}

// listConfig lists the ConfigMaps or Secrets (resource) reroll watches in
// ns: those selector selects, as reroll's informers list them.
func listConfig(ctx context.Context, client kubernetes.Interface, resource, ns, selector string, sink func(runtime.Object) error) error {
	return listPages(ctx, resource, ns, func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
		opts.LabelSelector = selector
		if resource == "configmaps" {
			l, err := client.CoreV1().ConfigMaps(ns).List(ctx, opts)
			if err != nil {
				return nil, "", err
			}
			return listPage(l)
		}
		l, err := client.CoreV1().Secrets(ns).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return listPage(l)
	}, sink)
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
	return listPages(ctx, "namespaces", "", func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
		l, err := client.CoreV1().Namespaces().List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return listPage(l)
	}, sink)
}

// listEvents lists the Events of namespace ("" for all) into sink.
func listEvents(ctx context.Context, client kubernetes.Interface, ns string, sink func(runtime.Object) error) error {
	return listPages(ctx, "events.events.k8s.io", ns, func(ctx context.Context, opts metav1.ListOptions) ([]runtime.Object, string, error) {
		l, err := client.EventsV1().Events(ns).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return listPage(l)
	}, sink)
}

// addDynamic lists, through the dynamic client, the custom kinds reroll
// watches (at the version given or the preferred one), and with
// --secrets-store-csi the driver's pod statuses.
func addDynamic(ctx context.Context, d controller.Decisions, cfg *rest.Config, in *controller.Inspector, namespace string) error {
	if len(d.ExtraKinds) == 0 && !d.SecretsStoreCSI {
		return nil
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, k := range d.ExtraKinds {
		gvr := k.GroupResource().WithVersion("")
		if k.GVR != nil && k.GVR.Version != "" {
			gvr = *k.GVR
		}
		list, err := dyn.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{Limit: pageSize})
		if apierrors.IsNotFound(err) {
			continue // its CRD is not installed: reroll watches nothing of it either
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k.Arg, asForbidden(err, "list", gvr.GroupResource().String(), namespace, ""))
		}
		for i := range list.Items {
			if err := in.AddCustom(&list.Items[i], k); err != nil {
				return err
			}
		}
	}
	if d.SecretsStoreCSI {
		list, err := dyn.Resource(controller.ProviderClassPodStatuses).Namespace(namespace).List(ctx, metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return asForbidden(err, "list", controller.ProviderClassPodStatuses.GroupResource().String(), namespace, "")
		}
		if err == nil {
			for i := range list.Items {
				if err := in.AddProviderClassPod(&list.Items[i]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// rolledEvents returns reroll's Rolled Events in namespace ("" for all),
// oldest first, or an error naming the missing permission.
func rolledEvents(ctx context.Context, client kubernetes.Interface, namespace string) ([]eventsv1.Event, error) {
	var out []eventsv1.Event
	err := listEvents(ctx, client, namespace, func(obj runtime.Object) error {
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
