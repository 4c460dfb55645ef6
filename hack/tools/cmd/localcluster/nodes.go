package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// kwokFiles holds the kwok Stage configuration (read-only).
//
//go:embed kwok-stages.yaml
var kwokFiles embed.FS

// fakeNodeName is the name of the single kwok-managed Node.
const fakeNodeName = "kwok-node-0"

// startScheduler starts kube-scheduler and waits for its /healthz.
func (c *cluster) startScheduler(deadline time.Time, sigs <-chan os.Signal) error {
	kc := filepath.Join(c.stateDir, "kube-scheduler.kubeconfig")
	if err := os.WriteFile(kc, kubeconfig(c.server, c.pki.ca, c.pki.scheduler, "system:kube-scheduler"), 0o600); err != nil {
		return err
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	began := time.Now()
	if _, err := c.start("kube-scheduler", nil,
		"--kubeconfig="+kc,
		"--authentication-kubeconfig="+kc,
		"--authorization-kubeconfig="+kc,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[0]),
		"--leader-elect=false",
		"--profiling=false",
	); err != nil {
		return err
	}
	// The scheduler serves /healthz with a self-signed certificate it
	// generates in memory; there is nothing to verify it against.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health check only
	}}
	err = c.waitReady(deadline, sigs, "kube-scheduler", func(ctx context.Context) error {
		_, err := get(ctx, hc, fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0]))
		return err
	})
	if err == nil {
		c.log.printf("kube-scheduler ready in %s", since(began))
	}
	return err
}

// startKwok starts kwok to simulate kubelets, registers one fake Node and
// waits until it is Ready and schedulable.
func (c *cluster) startKwok(deadline time.Time, sigs <-chan os.Signal) error {
	stages, err := kwokFiles.ReadFile("kwok-stages.yaml")
	if err != nil {
		return err
	}
	stagesPath := filepath.Join(c.stateDir, "kwok-stages.yaml")
	if err := os.WriteFile(stagesPath, stages, 0o644); err != nil {
		return err
	}
	kc := filepath.Join(c.stateDir, "kwok.kubeconfig")
	if err := os.WriteFile(kc, kubeconfig(c.server, c.pki.ca, c.pki.admin, "localcluster-admin"), 0o600); err != nil {
		return err
	}
	home := filepath.Join(c.stateDir, "kwok-home") // keeps kwok away from ~/.kwok
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	began := time.Now()
	if _, err := c.start("kwok", []string{"HOME=" + home},
		"--kubeconfig="+kc,
		"--config="+stagesPath,
		// Only its own fake node: the real node, if any, has a kubelet.
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		// Leases keep the Node Ready; without them the node lifecycle
		// controller marks it NotReady between (slow) status heartbeats.
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.0/24", // Pod IPs; must not overlap the Service range
	); err != nil {
		return err
	}
	if err := c.createFakeNode(deadline); err != nil {
		return err
	}
	err = c.waitReady(deadline, sigs, "node "+fakeNodeName, func(ctx context.Context) error {
		body, err := get(ctx, c.client, c.server+"/api/v1/nodes/"+fakeNodeName)
		if err != nil {
			return err
		}
		return nodeSchedulable([]byte(body))
	})
	if err == nil {
		c.log.printf("kwok ready in %s (node %s)", since(began), fakeNodeName)
	}
	return err
}

// createFakeNode registers the kwok-managed Node with the API server.
func (c *cluster) createFakeNode(deadline time.Time) error {
	// Room for every Pod the e2e suite's parallel tests create at once; kwok
	// runs no containers, so capacity costs nothing.
	resources := map[string]string{"cpu": "1000", "memory": "4Ti", "pods": "2000"}
	node := map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata": map[string]any{
			"name": fakeNodeName,
			"labels": map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": fakeNodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
			"annotations": map[string]string{
				"kwok.x-k8s.io/node":           "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
		},
		"status": map[string]any{"capacity": resources, "allocatable": resources},
	}
	data, err := json.Marshal(node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server+"/api/v1/nodes", bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("creating node %s: %w", fakeNodeName, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("creating node %s: %s", fakeNodeName, resp.Status)
	}
	return nil
}

// nodeSchedulable returns nil if the Node JSON in body is Ready and carries
// no NoSchedule/NoExecute taint (e.g. node.kubernetes.io/not-ready) but
// those with a key in tolerated.
func nodeSchedulable(body []byte, tolerated ...string) error {
	var node struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Taints []struct{ Key, Effect string } `json:"taints"`
		} `json:"spec"`
		Status struct {
			Conditions []struct{ Type, Status string } `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &node); err != nil {
		return err
	}
	ready := false
	for _, cond := range node.Status.Conditions {
		if cond.Type == "Ready" && cond.Status == "True" {
			ready = true
		}
	}
	if !ready {
		return fmt.Errorf("node %s is not Ready yet", node.Metadata.Name)
	}
	for _, t := range node.Spec.Taints {
		if (t.Effect == "NoSchedule" || t.Effect == "NoExecute") && !slices.Contains(tolerated, t.Key) {
			return fmt.Errorf("node %s still has taint %s:%s", node.Metadata.Name, t.Key, t.Effect)
		}
	}
	return nil
}
