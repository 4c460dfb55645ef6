//go:build e2e

package e2e

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestChartInstallRunsReroll installs charts/reroll, as shipped, with
// reroll's own image built without Docker ($REROLL_E2E_REROLL_IMAGE), on the
// real node: reroll runs as a pod under the chart's ServiceAccount and
// RBAC, with the in-cluster config, the chart's probes and security
// context. It rolls a consumer, its /metrics is scraped through
// kube-apiserver's pod proxy, and deleting the leader's pod (a kill, the
// Deployment then starts another) loses no change made meanwhile.
func TestChartInstallRunsReroll(t *testing.T) {
	t.Parallel()
	node := requireRealNode(t)
	image := os.Getenv("REROLL_E2E_REROLL_IMAGE")
	if image == "" {
		t.Fatal("REROLL_E2E_REROLL_IMAGE is not set: run `make e2e`, which builds reroll's image (make images)")
	}
	repo, tag, _ := strings.Cut(image, ":")
	home, ns := newNamespace(t), newNamespace(t)
	helmInstall(t, home, "reroll-"+home[len(home)-6:],
		"image.repository="+repo, "image.tag="+tag, "image.pullPolicy=Never", "watchNamespace="+ns,
		`nodeSelector.reroll\.dev/node=real`, "tolerations[0].key=reroll.dev/node", "tolerations[0].value=real", "tolerations[0].effect=NoSchedule")
	leader := waitChartLeader(t, home, node, "")
	followPodLog(t, home, leader)

	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	waitAdopted(t, ns, "web")
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitReplicaSets(t, ns, "web", 2)
	waitEvent(t, ns, "web", "Rolled")
	metrics := scrapePod(t, home, leader)
	if seriesValue(metrics, `reroll_rollouts_total{kind="Deployment",namespace="`+ns+`"}`) != "1" || seriesValue(metrics, "reroll_leader") != "1" {
		t.Errorf("the leader's /metrics, through the pod proxy, does not show its roll:\n%s", metrics)
	}

	// A kill of the leader's pod, and a change at once: the next leader
	// rolls it, once.
	zero := int64(0)
	if err := testEnv.client.CoreV1().Pods(home).Delete(context.Background(), leader, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "3" })
	followPodLog(t, home, waitChartLeader(t, home, node, leader))
	waitReplicaSets(t, ns, "web", 3)
	rolls := watchNamespaceRolls(t, ns)
	b := newBarrier(t, ns)
	waitAdopted(t, ns, "barrier")
	b.wait()
	if n := rolls.count("web"); n != 0 {
		t.Errorf("web rolled %d more times after the change made while its leader was killed, want none", n)
	}
}

// waitChartLeader waits until a reroll pod of the chart in home, other
// than not, runs on node, Ready, and leads (its /metrics says so), and
// returns its name.
func waitChartLeader(t *testing.T, home, node, not string) string {
	t.Helper()
	var leader string
	waitForUpTo(t, "a Ready reroll pod that leads, on "+node, rolloutTimeout, func(ctx context.Context) (bool, error) {
		pods, err := testEnv.client.CoreV1().Pods(home).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=reroll"})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Name == not || p.Spec.NodeName != node || p.DeletionTimestamp != nil || !podReady(p) {
				continue
			}
			body, err := testEnv.client.CoreV1().Pods(home).ProxyGet("http", p.Name, "8080", "/metrics", nil).DoRaw(ctx)
			if err == nil && seriesValue(string(body), "reroll_leader") == "1" {
				leader = p.Name
				return true, nil
			}
		}
		return false, nil
	})
	return leader
}

// scrapePod returns a reroll pod's /metrics, read through kube-apiserver's
// pod proxy.
func scrapePod(t *testing.T, ns, pod string) string {
	t.Helper()
	body, err := testEnv.client.CoreV1().Pods(ns).ProxyGet("http", pod, "8080", "/metrics", nil).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("scraping %s through the pod proxy: %v", pod, err)
	}
	return string(body)
}

// followPodLog streams a pod's log from its start while the test runs and
// logs it if the test fails: a deleted pod's log can no longer be read
// afterwards, and it is the log that says why a hand-over went wrong.
func followPodLog(t *testing.T, ns, pod string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := testEnv.client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		cancel()
		t.Logf("following the log of %s: %v", pod, err)
		return
	}
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := stream.Read(buf)
			mu.Lock()
			log.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				if err != io.EOF && ctx.Err() == nil {
					mu.Lock()
					log.WriteString("(log stream ended: " + err.Error() + ")\n")
					mu.Unlock()
				}
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = stream.Close()
		<-done
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("log of reroll pod %s:\n%s", pod, log.String())
		}
	})
}
