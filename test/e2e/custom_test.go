//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// The test CRD, modelled on Argo Rollouts: a namespaced kind with a pod
// template at spec.template.
var (
	crdGVR     = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	rolloutGVR = schema.GroupVersionResource{Group: "e2e.reroll.dev", Version: "v1alpha1", Resource: "rollouts"}
)

// rolloutCRD returns the CustomResourceDefinition of the test kind.
func rolloutCRD() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "rollouts.e2e.reroll.dev"},
		"spec": map[string]any{
			"group": "e2e.reroll.dev",
			"scope": "Namespaced",
			"names": map[string]any{"plural": "rollouts", "singular": "rollout", "kind": "Rollout", "listKind": "RolloutList"},
			"versions": []any{map[string]any{
				"name": "v1alpha1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true,
				}},
			}},
		},
	}}
}

// A CRD installed after reroll starts is picked up without a restart, and
// its objects are adopted and rolled through the dynamic client.
func TestCustomKindInstalledLater(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(testEnv.config)
	if err != nil {
		t.Fatal(err)
	}
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}))
	r := startReroll(t, ns, "--extra-kinds=rollouts.e2e.reroll.dev", "--discovery-recheck-period=1s")
	r.waitLog(1, "extra kind is not served")

	created := time.Now()
	if _, err := dyn.Resource(crdGVR).Create(ctx, rolloutCRD(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(crdGVR).Delete(context.Background(), "rollouts.e2e.reroll.dev", metav1.DeleteOptions{})
	})
	r.waitLog(1, "Watching extra kind", `kind="Rollout.e2e.reroll.dev"`)
	t.Logf("time from CRD creation to reroll watching it: %v", time.Since(created).Round(time.Millisecond))

	template := testDeployment(ns, "x", nil, envFrom("cfg")).Spec.Template
	rollout := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "e2e.reroll.dev/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "canary", "namespace": ns, "annotations": map[string]any{annotationAuto: "true"}},
		"spec": map[string]any{"replicas": int64(1), "template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "canary"}},
			"spec": map[string]any{"containers": []any{map[string]any{
				"name": template.Spec.Containers[0].Name, "image": template.Spec.Containers[0].Image,
				"envFrom": []any{map[string]any{"configMapRef": map[string]any{"name": "cfg"}}},
			}}},
		}},
	}}
	// The CRD may take a moment to be served for writes.
	waitFor(t, "creating a Rollout", func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(rolloutGVR).Namespace(ns).Create(ctx, rollout, metav1.CreateOptions{})
		return err == nil, nil
	})
	annotation := func(ctx context.Context, path ...string) (string, error) {
		u, err := dyn.Resource(rolloutGVR).Namespace(ns).Get(ctx, "canary", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		v, _, err := unstructured.NestedString(u.Object, path...)
		return v, err
	}
	waitFor(t, "adoption of the Rollout", func(ctx context.Context) (bool, error) {
		v, err := annotation(ctx, "metadata", "annotations", annotationConsumed)
		return v != "", err
	})
	if v, _ := annotation(ctx, "spec", "template", "metadata", "annotations", annotationConfigHash); v != "" {
		t.Fatalf("adoption wrote the template: %q", v)
	}
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitFor(t, "the Rollout's template to roll", func(ctx context.Context) (bool, error) {
		v, err := annotation(ctx, "spec", "template", "metadata", "annotations", annotationConfigHash)
		return v != "", err
	})
	waitEvent(t, ns, "canary", "Rolled")
}

// Preflight refuses to start, with one clear message, when the identity
// lacks a permission reroll needs.
func TestPreflightFailsFast(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reroll-nopatch", Namespace: ns}}
	if _, err := testEnv.client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "almost", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"get", "list", "watch", "create"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list", "watch", "patch"}},
			{APIGroups: []string{"batch"}, Resources: []string{"cronjobs"}, Verbs: []string{"get", "list", "watch", "patch"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create"}}, // no patch
		},
	}
	if _, err := testEnv.client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "almost", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "almost"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}},
	}
	if _, err := testEnv.client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	grantNamespaceRead(t, ns, sa.Name)
	token, err := testEnv.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, tokenRequest(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := exec.Command(testEnv.controller, append([]string{"--kubeconfig=" + tokenKubeconfig(t, token.Status.Token),
		"--namespace=" + ns, "--controller-namespace=" + ns}, localServers()...)...).CombinedOutput()
	took := time.Since(start)
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("reroll exited with %v, want status 1; output:\n%s", err, out)
	}
	want := fmt.Sprintf("reroll's identity lacks permission to: patch events.events.k8s.io in namespace %s", ns)
	if !strings.Contains(string(out), want) {
		t.Errorf("output does not say %q:\n%s", want, out)
	}
	t.Logf("preflight failed in %v", took.Round(time.Millisecond))
}
