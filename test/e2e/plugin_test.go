//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// plugin runs the built kubectl-reroll as a user would, with kubeconfig,
// and returns its output; it fails the test on a non-zero exit.
func plugin(t *testing.T, kubeconfig, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Getenv("REROLL_E2E_PLUGIN"), append(args, "--kubeconfig="+kubeconfig)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl-reroll %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("$ kubectl reroll %s\n%s", strings.Join(args, " "), out)
	return string(out)
}

// rowOf returns the line of a table that starts with name.
func rowOf(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}

// TestPluginImpactStatusExplain runs kubectl-reroll against the control
// plane: impact names exactly the consumers a change rolls, and applying
// the change rolls exactly those; status says "will roll" for a change made
// while reroll is stopped and "in sync" once it ran; explain names a
// reference in an init container.
func TestPluginImpactStatusExplain(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	kc := testEnv.info.Kubeconfig
	create(t, configMap(ns, "web-config", map[string]string{"LOG_LEVEL": "info", "greeting": "hello"}),
		testDeployment(ns, "web", auto(), envKey("web-config", "LOG_LEVEL")),
		testDeployment(ns, "api", auto(), envFrom("web-config")),
		testDeployment(ns, "worker", auto(), envKey("web-config", "greeting")))
	init := testDeployment(ns, "migrate", auto(), nil)
	init.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "schema", Image: "registry.invalid/migrate:1",
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}}}}
	create(t, init)
	b := newBarrier(t, ns)
	r := startReroll(t, ns)
	for _, n := range []string{"web", "api", "worker", "migrate"} {
		waitAdopted(t, ns, n)
	}
	common := []string{"-n", ns, "--controller-namespace=" + ns}

	change := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  LOG_LEVEL: debug\n  greeting: hello\n"
	out := plugin(t, kc, change, append([]string{"impact", "configmap/web-config", "-f", "-"}, common...)...)
	for name, want := range map[string]string{"deployment/web": "WOULD ROLL", "deployment/api": "WOULD ROLL", "deployment/migrate": "WOULD ROLL", "deployment/worker": "no roll"} {
		if row := rowOf(out, name); !strings.Contains(row, want) {
			t.Errorf("impact row of %s is %q, want %s", name, row, want)
		}
	}
	rolls := watchNamespaceRolls(t, ns)
	updateConfigMap(t, ns, "web-config", func(cm *corev1.ConfigMap) { cm.Data["LOG_LEVEL"] = "debug" })
	rolls.waitTotal("", 3)
	b.wait()
	if got := rolls.rolledNames(""); strings.Join(got, ",") != "api,barrier,migrate,web" {
		t.Errorf("the change rolled %q, want what impact said (api, migrate, web) and the barrier", got)
	}

	// A change while reroll is stopped: "will roll", then "in sync".
	r.stop()
	updateConfigMap(t, ns, "web-config", func(cm *corev1.ConfigMap) { cm.Data["greeting"] = "hi" })
	out = plugin(t, kc, "", append([]string{"status"}, common...)...)
	if row := rowOf(out, "deployment/worker"); !strings.Contains(row, "will roll") {
		t.Errorf("status of worker while reroll is stopped: %q, want will roll", row)
	}
	startReroll(t, ns)
	waitReplicaSets(t, ns, "worker", 2)
	b.wait()
	out = plugin(t, kc, "", append([]string{"status"}, common...)...)
	for _, n := range []string{"web", "api", "worker", "migrate"} {
		if row := rowOf(out, "deployment/"+n); !strings.Contains(row, "in sync") {
			t.Errorf("status of %s after reroll ran: %q, want in sync", n, row)
		}
	}

	out = plugin(t, kc, "", append([]string{"explain", "deployment/migrate"}, common...)...)
	if !strings.Contains(out, "initContainer schema envFrom") || !strings.Contains(out, "configmap/web-config every key") {
		t.Errorf("explain does not name the init container's reference:\n%s", out)
	}
	plugin(t, kc, "", append([]string{"explain", "deployment/web"}, common...)...)
}

// A user who may read workloads and ConfigMaps but not Secrets gets
// "unknown" and the missing permission, not a crash.
func TestPluginWithoutSecretRead(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "0"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	startReroll(t, ns)
	waitAdopted(t, ns, "web")
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "viewer", Namespace: ns}}
	if _, err := testEnv.client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "viewer", Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"apps", "batch"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "cronjobs"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"list"}},
	}}
	if _, err := testEnv.client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "viewer", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "viewer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "viewer", Namespace: ns}}}
	if _, err := testEnv.client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, err := testEnv.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "viewer", tokenRequest(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := plugin(t, tokenKubeconfig(t, token.Status.Token), "", "status", "-n", ns, "--controller-namespace="+ns)
	row := rowOf(out, "deployment/web")
	if !strings.Contains(row, "unknown") || !strings.Contains(row, "missing permission: get secrets reroll-hash-key in namespace "+ns) {
		t.Errorf("status without Secret read: %q, want unknown and the missing permission", row)
	}
}
