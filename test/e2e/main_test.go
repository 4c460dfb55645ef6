//go:build e2e

// Package e2e proves reroll's invariants against a real control plane
// (etcd, kube-apiserver with RBAC, kube-controller-manager) that TestMain
// starts with hack/tools' localcluster. Each test gets its own namespace and
// its own reroll process scoped to it, so tests run in parallel.
//
// The cluster also has a real node (containerd and kubelet), where pods
// really run, beside kwok's fake node: a test that needs it asks
// requireRealNode for its name, and fails with localcluster's one-line
// reason when the host could not start it. The node's images are the
// archives in $REROLL_E2E_IMAGES.
//
// Run it with `make e2e`, which builds the control plane and the controller
// and sets REROLL_E2E_BIN_DIR and REROLL_E2E_CONTROLLER.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// clusterInfo is what localcluster writes to <state-dir>/cluster.json.
type clusterInfo struct {
	Kubeconfig string            `json:"kubeconfig"`
	Server     string            `json:"server"`
	CAFile     string            `json:"caFile"`
	StateDir   string            `json:"stateDir"`
	Logs       map[string]string `json:"logs"`
	PIDs       map[string]int    `json:"pids"`
	// RealNode is the real node's name; RealNodeError says in one line
	// why there is none.
	RealNode      string `json:"realNode"`
	RealNodeError string `json:"realNodeError"`
}

// environment is the control plane every test shares.
type environment struct {
	info       clusterInfo
	config     *rest.Config
	client     kubernetes.Interface
	controller string // path of the reroll binary under test
	repoRoot   string
	// localcluster is the process that runs the control plane; signals to
	// it stop and start its components (see toggleComponent).
	localcluster *os.Process
}

// testEnv is set once by TestMain before any test runs and only read after.
var testEnv *environment

// TestMain starts the control plane, runs the tests and stops it.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain is TestMain's body, so that deferred teardown runs before exit.
func runMain(m *testing.M) int {
	binDir, controller := os.Getenv("REROLL_E2E_BIN_DIR"), os.Getenv("REROLL_E2E_CONTROLLER")
	if binDir == "" || controller == "" {
		fmt.Fprintln(os.Stderr, "e2e: REROLL_E2E_BIN_DIR and REROLL_E2E_CONTROLLER must be set; run `make e2e`")
		return 1
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	stateDir, err := os.MkdirTemp("", "reroll-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(stateDir)

	start := time.Now()
	// With nodes (kube-scheduler and kwok): Pods become Ready, so rollouts
	// complete, which the rollout-safety tests wait on. The real node is
	// tainted: only the pods that ask for it land there.
	args := []string{"--bin-dir", binDir, "--state-dir", stateDir, "--with-nodes", "--real-node"}
	if images := os.Getenv("REROLL_E2E_IMAGES"); images != "" {
		args = append(args, "--images", images)
	}
	cmd := exec.Command(filepath.Join(binDir, "localcluster"), args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting localcluster:", err)
		return 1
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// SIGTERM makes localcluster stop every process it started by PID.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	info, err := waitForCluster(filepath.Join(stateDir, "cluster.json"), exited, 3*time.Minute)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: control plane ready in %.1fs at %s\n", time.Since(start).Seconds(), info.Server)
	if info.RealNodeError != "" {
		fmt.Fprintf(os.Stderr, "e2e: no real node, the tests that need it will fail: %s\n", info.RealNodeError)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	cfg.QPS, cfg.Burst = 200, 400
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	testEnv = &environment{info: info, config: cfg, client: client, controller: controller, repoRoot: root, localcluster: cmd.Process}
	return m.Run()
}

// requireRealNode returns the name of the cluster's real node, or fails
// the test with localcluster's one-line reason why there is none.
func requireRealNode(t *testing.T) string {
	t.Helper()
	if testEnv.info.RealNode == "" {
		t.Fatalf("localcluster: real node unavailable: %s", testEnv.info.RealNodeError)
	}
	return testEnv.info.RealNode
}

// waitForCluster polls for cluster.json until it appears, localcluster
// exits, or the deadline passes.
func waitForCluster(path string, exited <-chan error, timeout time.Duration) (clusterInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			var info clusterInfo
			if err := json.Unmarshal(b, &info); err != nil {
				return info, fmt.Errorf("reading %s: %w", path, err)
			}
			return info, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return clusterInfo{}, err
		}
		select {
		case err := <-exited:
			return clusterInfo{}, fmt.Errorf("localcluster exited before it was ready: %v", err)
		case <-ctx.Done():
			return clusterInfo{}, fmt.Errorf("control plane not ready within %v", timeout)
		case <-tick.C:
		}
	}
}
