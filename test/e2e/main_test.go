//go:build e2e

// Package e2e proves reroll's invariants against a real control plane
// (etcd, kube-apiserver with RBAC, kube-controller-manager) that TestMain
// starts with hack/tools' localcluster. Each test gets its own namespace and
// its own reroll process scoped to it, so tests run in parallel.
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
	// complete, which the rollout-safety tests wait on.
	cmd := exec.Command(filepath.Join(binDir, "localcluster"), "--bin-dir", binDir, "--state-dir", stateDir, "--with-nodes")
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
