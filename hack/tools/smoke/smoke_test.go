// Package smoke tests a built localcluster end to end: it starts the binary
// from $REROLL_BIN_DIR as a subprocess and talks to the cluster with
// client-go. It builds nothing itself; run hack/build-control-plane.sh first:
//
//	hack/build-control-plane.sh
//	cd hack/tools && REROLL_BIN_DIR=$PWD/bin go test ./smoke -v
package smoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reroll/reroll/hack/tools/internal/syncbuf"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// wantVersion is the Kubernetes release pinned in hack/tools/go.mod.
const wantVersion = "v1.37.2"

// clusterInfo mirrors the cluster.json written by localcluster.
type clusterInfo struct {
	Kubeconfig string            `json:"kubeconfig"`
	Server     string            `json:"server"`
	CAFile     string            `json:"caFile"`
	StateDir   string            `json:"stateDir"`
	Logs       map[string]string `json:"logs"`
	PIDs       map[string]int    `json:"pids"`
	// RealNode and RealNodeError are set with --real-node: the node's
	// name, or why it could not start.
	RealNode      string `json:"realNode"`
	RealNodeError string `json:"realNodeError"`
}

// localclusterBin returns the localcluster binary in $REROLL_BIN_DIR, or
// skips the test if the variable is unset.
func localclusterBin(t *testing.T) (bin, binDir string) {
	t.Helper()
	binDir = os.Getenv("REROLL_BIN_DIR")
	if binDir == "" {
		t.Skip("REROLL_BIN_DIR is not set: build the control plane with hack/build-control-plane.sh and set REROLL_BIN_DIR to its bin dir (hack/tools/bin)")
	}
	binDir, err := filepath.Abs(binDir)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(binDir, "localcluster")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("REROLL_BIN_DIR=%s: %v", binDir, err)
	}
	return bin, binDir
}

// startLocalcluster starts localcluster with args and makes sure it is gone
// when the test ends. It returns the command, a channel closed when it has
// exited, and its combined output.
func startLocalcluster(t *testing.T, bin string, args ...string) (*exec.Cmd, <-chan struct{}, *syncbuf.Buffer) {
	t.Helper()
	out := &syncbuf.Buffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill() // its children die with it (Pdeathsig)
				<-done
			}
		}
		if t.Failed() {
			t.Logf("localcluster output:\n%s", out.String())
		}
	})
	return cmd, done, out
}

// stopLocalcluster sends localcluster SIGTERM and checks that it exits 0
// within the given time and that every process it reported (pids, from
// cluster.json) is gone after it.
func stopLocalcluster(t *testing.T, lc *exec.Cmd, done <-chan struct{}, out *syncbuf.Buffer, within time.Duration, pids map[string]int) {
	t.Helper()
	if err := lc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("localcluster did not exit within %s of SIGTERM:\n%s", within, out.String())
	}
	if code := lc.ProcessState.ExitCode(); code != 0 {
		t.Errorf("localcluster exited with %d, want 0:\n%s", code, out.String())
	}
	for name, pid := range pids {
		eventually(t, 5*time.Second, name+" (pid "+strconv.Itoa(pid)+") to be gone", func() (bool, error) {
			return processGone(pid), nil
		})
	}
}

// waitForClusterInfo polls for cluster.json until it appears, localcluster
// exits, or the deadline passes.
func waitForClusterInfo(t *testing.T, path string, done <-chan struct{}, out *syncbuf.Buffer) clusterInfo {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			var info clusterInfo
			if err := json.Unmarshal(data, &info); err != nil {
				t.Fatalf("cluster.json: %v\n%s", err, data)
			}
			return info
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		select {
		case <-done:
			t.Fatalf("localcluster exited before it was ready:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster.json did not appear within 2m:\n%s", out.String())
		}
	}
}

// eventually polls cond every 100ms until it returns true or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
}

// childPIDs returns the PIDs of all processes whose parent is ppid.
func childPIDs(t *testing.T, ppid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// Format: pid (comm) state ppid ...; comm may contain spaces.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(ppid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processGone reports whether no process with this PID exists any more.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// TestLocalcluster starts a cluster, checks version, the controller manager,
// RBAC and ServiceAccount tokens, then stops it and checks no process is left.
func TestLocalcluster(t *testing.T) {
	bin, binDir := localclusterBin(t)
	stateDir := filepath.Join(t.TempDir(), "state")

	began := time.Now()
	lc, done, out := startLocalcluster(t, bin, "--bin-dir="+binDir, "--state-dir="+stateDir)
	info := waitForClusterInfo(t, filepath.Join(stateDir, "cluster.json"), done, out)
	t.Logf("cluster ready in %.1fs: %s", time.Since(began).Seconds(), info.Server)

	// Every child of localcluster must be one of the components it reports.
	reported := map[int]bool{}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if info.PIDs[name] == 0 {
			t.Fatalf("cluster.json has no PID for %s: %+v", name, info.PIDs)
		}
		reported[info.PIDs[name]] = true
	}
	children := childPIDs(t, lc.Process.Pid)
	for _, pid := range children {
		if !reported[pid] {
			t.Errorf("localcluster has an unreported child process %d", pid)
		}
	}
	if len(children) != len(reported) {
		t.Errorf("localcluster children %v, want the PIDs %v", children, info.PIDs)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("version", func(t *testing.T) {
		v, err := cs.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != wantVersion {
			t.Fatalf("server version %q, want %q", v.GitVersion, wantVersion)
		}
	})

	ns := "smoke"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("deployment creates replicaset", func(t *testing.T) {
		labels := map[string]string{"app": "smoke"}
		dep, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "smoke"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "pause", Image: "registry.k8s.io/pause:3.10",
					}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "a ReplicaSet owned by the Deployment with 2 Pods", func() (bool, error) {
			rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, rs := range rss.Items {
				if ref := metav1.GetControllerOf(&rs); ref != nil && ref.UID == dep.UID {
					return rs.Status.Replicas == 2, nil
				}
			}
			return false, nil
		})
	})

	t.Run("rbac and serviceaccount tokens", func(t *testing.T) {
		sa, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		saCfg := rest.AnonymousClientConfig(cfg)
		saCfg.BearerToken = tr.Status.Token
		saCS := kubernetes.NewForConfigOrDie(saCfg)

		review, err := saCS.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token does not authenticate: %v", err)
		}
		if want := "system:serviceaccount:" + ns + ":reader"; review.Status.UserInfo.Username != want {
			t.Fatalf("token authenticates as %q, want %q", review.Status.UserInfo.Username, want)
		}

		_, err = saCS.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("listing secrets without a RoleBinding: got %v, want Forbidden", err)
		}

		if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secret-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa.Name}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the RoleBinding to allow listing secrets", func() (bool, error) {
			_, err := saCS.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err == nil, err
		})
	})

	// SIGTERM: localcluster must stop every child and exit 0.
	stopLocalcluster(t, lc, done, out, 30*time.Second, info.PIDs)
	if _, err := os.Stat(info.Kubeconfig); err != nil {
		t.Errorf("--state-dir must be kept on exit: %v", err)
	}
}

// TestLocalclusterCommand runs a command under localcluster with a temporary
// state dir: it sees KUBECONFIG, its exit code is passed on, and afterwards
// the components are gone and the state dir is removed.
func TestLocalclusterCommand(t *testing.T) {
	bin, binDir := localclusterBin(t)
	lc, done, out := startLocalcluster(t, bin, "--bin-dir="+binDir, "--",
		"sh", "-c", `test -s "$KUBECONFIG" && echo "CLUSTER=$(tr -d '\n' < "$(dirname "$KUBECONFIG")/cluster.json")" && exit 7`)
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("localcluster did not finish:\n%s", out.String())
	}
	output := out.String()
	if code := lc.ProcessState.ExitCode(); code != 7 {
		t.Errorf("localcluster exited with %d, want the command's 7:\n%s", code, output)
	}
	var info clusterInfo
	for line := range strings.Lines(output) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "CLUSTER="); ok {
			if err := json.Unmarshal([]byte(v), &info); err != nil {
				t.Fatalf("cluster.json as seen by the command: %v: %s", err, v)
			}
		}
	}
	if info.Kubeconfig == "" {
		t.Fatalf("command did not see $KUBECONFIG and cluster.json:\n%s", output)
	}
	if !strings.Contains(output, "localcluster: ready kubeconfig="+info.Kubeconfig) {
		t.Errorf("missing ready line for %s:\n%s", info.Kubeconfig, output)
	}
	for name, pid := range info.PIDs {
		eventually(t, 5*time.Second, name+" (pid "+strconv.Itoa(pid)+") to be gone", func() (bool, error) {
			return processGone(pid), nil
		})
	}
	if _, err := os.Stat(info.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary state dir %s not removed: %v", info.StateDir, err)
	}
}

// TestLocalclusterWithNodes checks --with-nodes: kube-scheduler places the
// Pods of a Deployment on the kwok node and they become Running. It is
// skipped unless kube-scheduler and kwok were built (WITH_NODES=1).
func TestLocalclusterWithNodes(t *testing.T) {
	bin, binDir := localclusterBin(t)
	for _, name := range []string{"kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			t.Skipf("%s not in REROLL_BIN_DIR (build with WITH_NODES=1 hack/build-control-plane.sh): %v", name, err)
		}
	}
	stateDir := filepath.Join(t.TempDir(), "state")
	began := time.Now()
	lc, done, out := startLocalcluster(t, bin, "--bin-dir="+binDir, "--state-dir="+stateDir, "--with-nodes")
	info := waitForClusterInfo(t, filepath.Join(stateDir, "cluster.json"), done, out)
	t.Logf("cluster with nodes ready in %.1fs", time.Since(began).Seconds())

	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	labels := map[string]string{"app": "running"}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "running"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "pause", Image: "registry.k8s.io/pause:3.10",
				}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "3 Running Pods and an available Deployment", func() (bool, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=running"})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
				running++
			}
		}
		dep, err := cs.AppsV1().Deployments("default").Get(ctx, "running", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return running == 3 && dep.Status.AvailableReplicas == 3, nil
	})

	if len(info.PIDs) != 5 {
		t.Errorf("cluster.json PIDs %v, want 5 components", info.PIDs)
	}
	stopLocalcluster(t, lc, done, out, 30*time.Second, info.PIDs)
}
