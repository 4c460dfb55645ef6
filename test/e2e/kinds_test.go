//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// countRevisions counts the ControllerRevisions owned by a workload: one per
// pod template it has had.
func countRevisions(ctx context.Context, ns, kind, name string) (int, error) {
	list, err := testEnv.client.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range list.Items {
		for _, o := range r.OwnerReferences {
			if o.Kind == kind && o.Name == name {
				n++
			}
		}
	}
	return n, nil
}

// waitRevisions waits until a workload owns exactly n ControllerRevisions.
func waitRevisions(t *testing.T, ns, kind, name string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d ControllerRevisions of %s %s", n, kind, name), func(ctx context.Context) (bool, error) {
		got, err := countRevisions(ctx, ns, kind, name)
		return got == n, err
	})
}

// StatefulSets and DaemonSets roll like Deployments: adoption writes no
// template, a consumed change makes kube-controller-manager create a new
// ControllerRevision, once.
func TestStatefulSetAndDaemonSetRoll(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	base := testDeployment(ns, "x", nil, envFrom("cfg")).Spec
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns, Annotations: auto()},
		Spec:       appsv1.StatefulSetSpec{Selector: base.Selector, Template: base.Template},
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns, Annotations: auto()},
		Spec:       appsv1.DaemonSetSpec{Selector: base.Selector, Template: base.Template},
	}
	ctx := context.Background()
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}))
	if _, err := testEnv.client.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := testEnv.client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := newBarrier(t, ns)
	startReroll(t, ns)
	waitFor(t, "adoption", func(ctx context.Context) (bool, error) {
		s, err := testEnv.client.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		d, err := testEnv.client.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		return err == nil && s.Annotations[annotationConsumed] != "" && d.Annotations[annotationConsumed] != "", err
	})
	waitRevisions(t, ns, "StatefulSet", "db", 1)
	waitRevisions(t, ns, "DaemonSet", "agent", 1)

	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitRevisions(t, ns, "StatefulSet", "db", 2)
	waitRevisions(t, ns, "DaemonSet", "agent", 2)
	b.wait()
	for kind, name := range map[string]string{"StatefulSet": "db", "DaemonSet": "agent"} {
		if n, err := countRevisions(ctx, ns, kind, name); err != nil || n != 2 {
			t.Errorf("%s %s has %d ControllerRevisions (%v), want 2", kind, name, n, err)
		}
		waitEvent(t, ns, name, "Rolled")
	}
}
