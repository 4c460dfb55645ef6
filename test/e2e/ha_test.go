//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Leader election timings of the HA test: short, so the test is quick, in
// the same proportions as Kubernetes' 15s/10s/2s.
const (
	testLeaseDuration = 4 * time.Second
	testRenewDeadline = 3 * time.Second
	testRetryPeriod   = 500 * time.Millisecond
)

// startReplica starts a leader-electing reroll named identity.
func startReplica(t *testing.T, ns, identity string) *rerollProcess {
	t.Helper()
	args := append([]string{
		"--kubeconfig=" + testEnv.info.Kubeconfig, "--namespace=" + ns, "--controller-namespace=" + ns,
		"--workers=1", "--debounce=200ms", "--v=4", "--leader-elect",
		"--leader-elect-lease-duration=" + testLeaseDuration.String(),
		"--leader-elect-renew-deadline=" + testRenewDeadline.String(),
		"--leader-elect-retry-period=" + testRetryPeriod.String(),
	}, localServers()...)
	cmd := exec.Command(testEnv.controller, args...)
	cmd.Env = append(os.Environ(), "POD_NAME="+identity)
	return startRerollCommand(t, cmd)
}

// kill sends SIGKILL, as a node failure or OOM kill would.
func (p *rerollProcess) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// address returns where the process serves metrics and probes (one server,
// see localServers), from its log.
func (p *rerollProcess) address() string {
	p.t.Helper()
	re := regexp.MustCompile(`"Serving" address="([^"]+)"`)
	var addr string
	waitFor(p.t, "the server address in the log", func(context.Context) (bool, error) {
		if m := re.FindStringSubmatch(p.log.String()); m != nil {
			addr = m[1]
			return true, nil
		}
		return false, nil
	})
	return addr
}

// get fetches a path from the process's server.
func (p *rerollProcess) get(path string) (int, string) {
	p.t.Helper()
	resp, err := http.Get("http://" + p.address() + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns one series' value from /metrics, or "" if absent.
func (p *rerollProcess) metric(series string) string {
	p.t.Helper()
	_, body := p.get("/metrics")
	return seriesValue(body, series)
}

// seriesValue returns one series' value in a /metrics body, or "" if
// absent. It reads sample lines only: a HELP line can contain a series'
// name followed by a number ("# HELP reroll_leader 1 while ...").
func seriesValue(body, series string) string {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// leaseHolder returns the holder of the reroll Lease in ns.
func leaseHolder(ctx context.Context, ns string) (string, error) {
	l, err := testEnv.client.CoordinationV1().Leases(ns).Get(ctx, "reroll", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil || l.Spec.HolderIdentity == nil {
		return "", err
	}
	return *l.Spec.HolderIdentity, nil
}

// waitLeader waits until the Lease is held by one of the candidates and
// returns which, and when that was first seen.
func waitLeader(t *testing.T, ns string, candidates ...string) (string, time.Time) {
	t.Helper()
	var holder string
	waitFor(t, fmt.Sprintf("a leader among %q", candidates), func(ctx context.Context) (bool, error) {
		h, err := leaseHolder(ctx, ns)
		for _, c := range candidates {
			if h == c {
				holder = h
				return true, err
			}
		}
		return false, err
	})
	return holder, time.Now()
}

// Two replicas: exactly one writes; a kill -9 of the leader hands over
// within LeaseDuration plus a margin, and a change made during the handover
// rolls exactly once; SIGTERM releases the Lease at once, so the standby
// takes over in about RetryPeriod. The leader's /metrics counts the roll.
func TestLeaderElection(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "0"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	b := newBarrier(t, ns)
	replicas := map[string]*rerollProcess{"a": startReplica(t, ns, "a"), "b": startReplica(t, ns, "b")}
	leaderName, _ := waitLeader(t, ns, "a", "b")
	standbyName := map[string]string{"a": "b", "b": "a"}[leaderName]
	leader, standby := replicas[leaderName], replicas[standbyName]
	waitAdopted(t, ns, "web")

	// Exactly one writes.
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	waitReplicaSets(t, ns, "web", 2)
	b.wait()
	if n := standby.countLog(`"Rolled"`) + standby.countLog(`"Adopted"`); n != 0 {
		t.Errorf("the standby wrote %d times", n)
	}
	if n := leader.countLog(`"Rolled"`, `workload="`+ns+`/web"`); n != 1 {
		t.Errorf("the leader rolled web %d times, want 1", n)
	}
	if got := leader.metric(fmt.Sprintf(`reroll_rollouts_total{kind="Deployment",namespace="%s"}`, ns)); got != "2" {
		t.Errorf("leader's rollouts metric = %q, want 2 (web and the barrier)", got)
	}
	if got, want := leader.metric("reroll_leader"), "1"; got != want {
		t.Errorf("leader's reroll_leader = %q, want %q", got, want)
	}
	if got, want := standby.metric("reroll_leader"), "0"; got != want {
		t.Errorf("standby's reroll_leader = %q, want %q", got, want)
	}
	for name, p := range replicas {
		if code, _ := p.get("/readyz"); code != http.StatusOK {
			t.Errorf("%s /readyz = %d, want 200 (standbys keep caches warm)", name, code)
		}
	}

	// kill -9 the leader and change the ConfigMap during the handover.
	killed := time.Now()
	leader.kill()
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	_, tookOver := waitLeader(t, ns, standbyName)
	failover := tookOver.Sub(killed)
	t.Logf("failover after kill -9: %v (lease duration %v)", failover.Round(time.Millisecond), testLeaseDuration)
	if failover > testLeaseDuration+3*time.Second {
		t.Errorf("failover took %v, want under lease duration %v plus a 3s margin", failover, testLeaseDuration)
	}
	waitReplicaSets(t, ns, "web", 3)
	b.wait()
	if n := replicaSets(t, ns, "web"); n != 3 {
		t.Errorf("%d ReplicaSets after a change during the handover, want 3 (rolled exactly once)", n)
	}

	// SIGTERM: the new leader releases the Lease after draining, and a fresh
	// standby takes over in about RetryPeriod.
	third := startReplica(t, ns, "c")
	third.waitLog(1, "Leader is", `identity="`+standbyName+`"`)
	terminated := time.Now()
	standby.stop()
	_, tookOver = waitLeader(t, ns, "c")
	handover := tookOver.Sub(terminated)
	t.Logf("hand-over after SIGTERM: %v (retry period %v)", handover.Round(time.Millisecond), testRetryPeriod)
	if handover >= testLeaseDuration {
		t.Errorf("hand-over after SIGTERM took %v: the Lease was not released (lease duration %v)", handover, testLeaseDuration)
	}
	if standby.err != nil {
		t.Errorf("the leader exited with %v after SIGTERM, want status 0", standby.err)
	}
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "3" })
	waitReplicaSets(t, ns, "web", 4)
}

// /readyz answers 200 only once the caches have synced: run as an identity
// that may not list Secrets, then grant it.
func TestReadyzWaitsForCacheSync(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reroll-partial", Namespace: ns}}
	if _, err := testEnv.client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "partial", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list", "watch", "patch"}},
			{APIGroups: []string{"batch"}, Resources: []string{"cronjobs"}, Verbs: []string{"get", "list", "watch", "patch"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
	bind := func(name, roleName string) {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: roleName},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}},
		}
		if _, err := testEnv.client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := testEnv.client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind("partial", "partial")
	grantNamespaceRead(t, ns, sa.Name)
	token, err := testEnv.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, tokenRequest(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := startRerollCommand(t, exec.Command(testEnv.controller, append([]string{
		"--kubeconfig=" + tokenKubeconfig(t, token.Status.Token), "--namespace=" + ns, "--controller-namespace=" + ns, "--v=2",
		"--preflight=false"}, // preflight would refuse to start without list on secrets
		localServers()...)...))
	if code, body := r.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q, want 200 while caches sync", code, body)
	}
	// The Secret informer cannot list: wait until it has failed at least
	// once, so the 500 below is observed while it is truly stuck.
	r.waitLog(1, "secrets", "forbidden")
	if code, body := r.get("/readyz"); code != http.StatusInternalServerError || !strings.Contains(body, "not synced") {
		t.Errorf("/readyz before sync = %d %q, want 500", code, body)
	}

	listSecrets := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "list-secrets", Namespace: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list", "watch"}}},
	}
	if _, err := testEnv.client.RbacV1().Roles(ns).Create(ctx, listSecrets, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind("list-secrets", "list-secrets")
	waitFor(t, "/readyz 200 after the grant", func(context.Context) (bool, error) {
		code, _ := r.get("/readyz")
		return code == http.StatusOK, nil
	})
}

// grantNamespaceRead lets ServiceAccount sa of ns read its own Namespace,
// by name, as the namespaced manifests do: reroll watches it for
// reroll.dev/paused.
func grantNamespaceRead(t *testing.T, ns, sa string) {
	t.Helper()
	ctx := context.Background()
	name := "read-namespace-" + ns
	cr := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{ns}, Verbs: []string{"get", "list", "watch"}}},
	}
	if _, err := testEnv.client.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}
	if _, err := testEnv.client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = testEnv.client.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = testEnv.client.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}
