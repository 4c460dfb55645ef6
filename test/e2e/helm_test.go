//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/preflight"
)

// grant is one verb on one resource, cluster-wide (namespace "") or in one
// namespace, and for one object name or any ("").
type grant struct{ verb, group, resource, namespace, name string }

// rulesGrants expands RBAC rules, bound in namespace ("" for a ClusterRole
// bound cluster-wide), into grants.
func rulesGrants(rules []rbacv1.PolicyRule, namespace string) []grant {
	var out []grant
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					for _, n := range names {
						out = append(out, grant{v, g, res, namespace, n})
					}
				}
			}
		}
	}
	return out
}

// helmInstall installs charts/reroll as release into namespace ns with
// the given --set values, and uninstalls it at cleanup.
func helmInstall(t *testing.T, ns, release string, set ...string) {
	t.Helper()
	helm := filepath.Join(os.Getenv("REROLL_E2E_BIN_DIR"), "helm")
	chart := filepath.Join(testEnv.repoRoot, "charts", "reroll")
	if dir := os.Getenv("REROLL_E2E_CHART"); dir != "" {
		chart = dir // another version of the chart, to show what a test proves
	}
	args := []string{"install", release, chart,
		"--kubeconfig", testEnv.info.Kubeconfig, "--namespace", ns, "--wait=false"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		c := exec.Command(helm, "uninstall", release, "--kubeconfig", testEnv.info.Kubeconfig, "--namespace", ns)
		c.Env = cmd.Env
		_ = c.Run()
	})
	if _, err := testEnv.client.AppsV1().Deployments(ns).Get(context.Background(), "reroll", metav1.GetOptions{}); err != nil {
		t.Fatalf("the chart's Deployment: %v", err)
	}
}

// grantedTo returns what the RBAC bound to reroll's ServiceAccount in ns
// grants: its ClusterRoles bound cluster-wide, and its Roles bound in any
// namespace.
func grantedTo(t *testing.T, ns string) []grant {
	t.Helper()
	ctx := context.Background()
	boundHere := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Namespace == ns && s.Name == "reroll"
		})
	}
	var granted []grant
	crbs, err := testEnv.client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range crbs.Items {
		if !boundHere(b.Subjects) {
			continue
		}
		cr, err := testEnv.client.RbacV1().ClusterRoles().Get(ctx, b.RoleRef.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		granted = append(granted, rulesGrants(cr.Rules, "")...)
	}
	rbs, err := testEnv.client.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range rbs.Items {
		if !boundHere(b.Subjects) {
			continue
		}
		role, err := testEnv.client.RbacV1().Roles(b.Namespace).Get(ctx, b.RoleRef.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		granted = append(granted, rulesGrants(role.Rules, b.Namespace)...)
	}
	return granted
}

// assertGrantsExactly checks that granted holds every permission the
// preflight check requires of settings, and nothing else but get on what
// reroll lists (as manifests/ grants it too).
func assertGrantsExactly(t *testing.T, granted []grant, settings preflight.ControllerSettings) {
	t.Helper()
	var required []grant
	for _, a := range preflight.ControllerRequirements(settings).Access {
		required = append(required, grant{a.Verb, a.Group, a.Resource, a.Namespace, a.Name})
	}
	// What reroll writes at first start, which preflight does not check:
	// the hash-key Secret, created if missing.
	required = append(required, grant{"create", "", "secrets", settings.ControllerNamespace, ""})
	for _, g := range required {
		if !slices.Contains(granted, g) {
			t.Errorf("the chart does not grant %+v, which preflight requires", g)
		}
	}
	for _, g := range granted {
		if slices.Contains(required, g) {
			continue
		}
		listed := slices.Contains(required, grant{"list", g.group, g.resource, g.namespace, g.name})
		if g.verb != "get" || !listed {
			t.Errorf("the chart grants %+v, which preflight does not require", g)
		}
	}
	t.Logf("the chart grants %d verb-resource pairs; preflight requires %d", len(granted), len(required))
}

// builtinResources returns the built-in workload resources reroll watches
// by default, as the chart's default kinds.
func builtinResources() []schema.GroupVersionResource {
	var builtin []schema.GroupVersionResource
	for _, name := range controller.DefaultKindNames() {
		k, _ := controller.KindNamed(name)
		builtin = append(builtin, k.Resource)
	}
	return builtin
}

// TestHelmChart installs charts/reroll with Helm into the control plane,
// waits until the API server accepted its Deployment, and checks that the
// RBAC it rendered grants exactly what the preflight check requires of that
// configuration (plus get on what reroll lists, as manifests/ grants).
func TestHelmChart(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	helmInstall(t, ns, "reroll-"+ns[len(ns)-6:])
	assertGrantsExactly(t, grantedTo(t, ns), preflight.ControllerSettings{
		BuiltinResources: builtinResources(), ControllerNamespace: ns, HashKeySecret: "reroll-hash-key",
		PendingChangesSecret: "reroll-pending-changes", LeaderElect: true, LeaseNamespace: ns, WatchesPods: true,
	})
}
