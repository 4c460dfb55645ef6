package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/plan"
)

// The commands that write: pause, resume and release. Each writes exactly
// one of reroll's annotations with a JSON merge patch, says what it did,
// and with --dry-run only says it.

// fieldManager names the plugin in the managedFields of what it writes.
const fieldManager = "kubectl-reroll"

// defineDryRun defines --dry-run.
func defineDryRun(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.dryRun, "dry-run", false, "Only show what would be written.")
}

// patchFunc patches one object of a resource with a merge patch.
type patchFunc func(ctx context.Context, client kubernetes.Interface, namespace, name string, body []byte) error

// mergePatcher is the Patch method every typed client has.
type mergePatcher[T any] interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// patchWith returns the patchFunc of the typed client that resource
// returns for a namespace.
func patchWith[T any](resource func(c kubernetes.Interface, namespace string) mergePatcher[T]) patchFunc {
	return func(ctx context.Context, c kubernetes.Interface, namespace, name string, body []byte) error {
		_, err := resource(c, namespace).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: fieldManager})
		return err
	}
}

// annotatable returns the patch function of each kind the commands take,
// by the names kubectl uses, singular, plural and short.
func annotatable() map[string]patchFunc {
	deployments := patchWith(func(c kubernetes.Interface, ns string) mergePatcher[*appsv1.Deployment] {
		return c.AppsV1().Deployments(ns)
	})
	statefulSets := patchWith(func(c kubernetes.Interface, ns string) mergePatcher[*appsv1.StatefulSet] {
		return c.AppsV1().StatefulSets(ns)
	})
	daemonSets := patchWith(func(c kubernetes.Interface, ns string) mergePatcher[*appsv1.DaemonSet] {
		return c.AppsV1().DaemonSets(ns)
	})
	cronJobs := patchWith(func(c kubernetes.Interface, ns string) mergePatcher[*batchv1.CronJob] {
		return c.BatchV1().CronJobs(ns)
	})
	configMaps := patchWith(func(c kubernetes.Interface, ns string) mergePatcher[*corev1.ConfigMap] {
		return c.CoreV1().ConfigMaps(ns)
	})
	secrets := patchWith(func(c kubernetes.Interface, ns string) mergePatcher[*corev1.Secret] { return c.CoreV1().Secrets(ns) })
	namespaces := patchWith(func(c kubernetes.Interface, _ string) mergePatcher[*corev1.Namespace] { return c.CoreV1().Namespaces() })
	return map[string]patchFunc{
		"deployment": deployments, "deployments": deployments, "deploy": deployments,
		"statefulset": statefulSets, "statefulsets": statefulSets, "sts": statefulSets,
		"daemonset": daemonSets, "daemonsets": daemonSets, "ds": daemonSets,
		"cronjob": cronJobs, "cronjobs": cronJobs, "cj": cronJobs,
		"configmap": configMaps, "configmaps": configMaps, "cm": configMaps,
		"secret": secrets, "secrets": secrets,
		"namespace": namespaces, "namespaces": namespaces, "ns": namespaces,
	}
}

// runPause sets reroll.dev/paused on a workload, object or namespace.
func runPause(ctx context.Context, o *options, args []string, out io.Writer) error {
	return annotate(ctx, o, args, out, plan.AnnotationPaused, func(context.Context, kubernetes.Interface, string, string, string) (string, error) {
		return "true", nil
	})
}

// runResume removes reroll.dev/paused: the held rolls happen, once each.
func runResume(ctx context.Context, o *options, args []string, out io.Writer) error {
	return annotate(ctx, o, args, out, plan.AnnotationPaused, func(context.Context, kubernetes.Interface, string, string, string) (string, error) {
		return "", nil
	})
}

// runRelease sets reroll.dev/release on a ConfigMap or Secret to the digest
// of its current content: that one change passes its holds.
func runRelease(ctx context.Context, o *options, args []string, out io.Writer) error {
	return annotate(ctx, o, args, out, plan.AnnotationRelease, func(ctx context.Context, client kubernetes.Interface, kind, namespace, name string) (string, error) {
		var obj runtime.Object
		var err error
		var ref plan.ConfigRef
		switch kind {
		case "configmap", "configmaps", "cm":
			ref = plan.ConfigRef{Type: plan.TypeConfigMap, Name: name}
			obj, err = client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
		case "secret", "secrets":
			ref = plan.ConfigRef{Type: plan.TypeSecret, Name: name}
			obj, err = client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		default:
			return "", fmt.Errorf("release takes a configmap or a secret, not a %s", kind)
		}
		if err != nil {
			return "", err
		}
		secret, err := readHashKeySecret(ctx, o, client)
		if err != nil {
			return "", err
		}
		key, err := controller.HashKeyFromSecret(secret)
		if err != nil {
			return "", err
		}
		cached, err := controller.TransformForCache(obj)
		if err != nil {
			return "", err
		}
		_, digest, _ := strings.Cut(string(plan.CalculateChangeID(key, ref, plan.CachedDigests(cached))), ":")
		return digest, nil
	})
}

// annotate sets annotation (to what value returns; "" removes it) on the
// object args names, KIND/NAME, and says what it did.
func annotate(ctx context.Context, o *options, args []string, out io.Writer, annotation string,
	value func(ctx context.Context, client kubernetes.Interface, kind, namespace, name string) (string, error)) error {
	if len(args) != 1 || !strings.Contains(args[0], "/") {
		return fmt.Errorf("want one KIND/NAME, such as configmap/app-config")
	}
	kind, name, _ := strings.Cut(strings.ToLower(args[0]), "/")
	patch, ok := annotatable()[kind]
	if !ok {
		return fmt.Errorf("unknown kind %q: the kinds are deployment, statefulset, daemonset, cronjob, configmap, secret and namespace", kind)
	}
	_, client, namespace, err := o.connector(o)
	if err != nil {
		return err
	}
	v, err := value(ctx, client, kind, namespace, name)
	if err != nil {
		return err
	}
	var set any = v
	what := fmt.Sprintf("set %s=%s", annotation, v)
	if v == "" {
		set, what = nil, "removed "+annotation
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{annotation: set}}})
	if err != nil {
		return err
	}
	if o.dryRun {
		_, err = fmt.Fprintf(out, "%s/%s: would have %s (dry run)\n", kind, name, what)
		return err
	}
	if err := patch(ctx, client, namespace, name, body); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s/%s: %s\n", kind, name, what)
	return err
}
