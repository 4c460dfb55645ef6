package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// clusterStartTimeout bounds the wait for localcluster's cluster.json.
	clusterStartTimeout = 2 * time.Minute
	// clusterStopGrace is how long localcluster gets after SIGTERM; it
	// stops each component with its own 5s grace.
	clusterStopGrace = 45 * time.Second
	// driverQPS and driverBurst are the bench client's rate limits: high,
	// so that seeding many objects is bound by the server, not the client.
	driverQPS   = 500
	driverBurst = 1000
)

// clusterInfo mirrors the cluster.json written by localcluster.
type clusterInfo struct {
	Kubeconfig string            `json:"kubeconfig"`
	Server     string            `json:"server"`
	CAFile     string            `json:"caFile"`
	StateDir   string            `json:"stateDir"`
	Logs       map[string]string `json:"logs"`
	PIDs       map[string]int    `json:"pids"`
}

// cluster is a running localcluster and a client of it.
type cluster struct {
	proc    *process
	info    clusterInfo
	logPath string
	config  *rest.Config
	client  kubernetes.Interface
}

// startCluster starts a fresh localcluster with its state in stateDir (with
// a kwok node when withNodes) and waits, with a deadline, until it has
// written cluster.json.
func startCluster(ctx context.Context, binDir, stateDir string, withNodes bool) (*cluster, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(filepath.Dir(stateDir), "localcluster.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	args := []string{"--bin-dir=" + binDir, "--state-dir=" + stateDir}
	if withNodes {
		args = append(args, "--with-nodes")
	}
	cmd := exec.Command(filepath.Join(binDir, "localcluster"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := startProcess("localcluster", cmd)
	if err != nil {
		return nil, err
	}
	c := &cluster{proc: p, logPath: logPath}
	if err := c.waitInfo(ctx, filepath.Join(stateDir, "cluster.json")); err != nil {
		c.stop()
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.info.Kubeconfig)
	if err != nil {
		c.stop()
		return nil, err
	}
	c.config = cfg
	if c.client, err = newClient(cfg, driverQPS, driverBurst); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// newClient returns a clientset of cfg with the given rate limits, speaking
// protobuf, which costs the bench and the API server less than JSON.
func newClient(cfg *rest.Config, qps float32, burst int) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, burst
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg = rest.AddUserAgent(cfg, "reroll-bench")
	return kubernetes.NewForConfig(cfg)
}

// waitInfo polls for cluster.json until it appears, localcluster exits, or
// the deadline passes.
func (c *cluster) waitInfo(ctx context.Context, path string) error {
	deadline := time.NewTimer(clusterStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			return json.Unmarshal(data, &c.info)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		select {
		case <-c.proc.done:
			return fmt.Errorf("localcluster exited before it was ready: %v\n%s", c.proc.err, logTail(c.logPath, 30))
		case <-deadline.C:
			return fmt.Errorf("localcluster not ready within %s\n%s", clusterStartTimeout, logTail(c.logPath, 30))
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stop tears the cluster down: SIGTERM to localcluster, which stops its
// components, then SIGKILL if it hangs (the components die with it).
func (c *cluster) stop() {
	c.proc.stop(clusterStopGrace)
}

// serverMetrics scrapes kube-apiserver's /metrics.
func (c *cluster) serverMetrics(ctx context.Context) (metricSet, error) {
	body, err := c.client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("scraping kube-apiserver: %w", err)
	}
	return parseMetrics(string(body))
}

// deploymentPatchMatch selects, in apiserver_request_total, the PATCH
// requests for Deployments (not their subresources), whatever the code.
func deploymentPatchMatch() []string {
	return []string{"verb", "PATCH", "group", "apps", "resource", "deployments", "subresource", ""}
}

// logTail returns the last n lines of a log file, for error messages.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("---- last %d lines of %s ----\n%s\n---- end ----", len(lines), path, strings.Join(lines, "\n"))
}
