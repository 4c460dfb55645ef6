//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestObservabilityMetricsExist: every metric the chart's Grafana dashboard
// and PrometheusRule use (as hack/tools/cmd/promcheck lists them, parsed
// with Prometheus' own parser) is exposed by a live reroll that has rolled
// a workload. Metrics are compared by family (the # TYPE lines), so a
// labelled counter that nothing has incremented yet still counts, and a
// histogram family provides its _bucket, _sum and _count series.
func TestObservabilityMetricsExist(t *testing.T) {
	t.Parallel()
	used := promcheckNames(t)
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "0"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	r := startReroll(t, ns)
	waitAdopted(t, ns, "web")
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	var body string
	waitFor(t, "the roll in /metrics", func(context.Context) (bool, error) {
		_, body = r.get("/metrics")
		return strings.Contains(body, `reroll_rollouts_total{kind="Deployment"`), nil
	})
	exposed := exposedNames(body)
	var missing []string
	for _, n := range used {
		if !exposed[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the dashboard or the alerts use metrics reroll does not expose: %s\nreroll exposes: %s",
			strings.Join(missing, ", "), strings.Join(sortedNames(exposed), " "))
	}
	if len(used) < 10 {
		t.Errorf("promcheck listed %d metrics: %q; the dashboard and alerts use more", len(used), used)
	}
}

// promcheckNames runs promcheck (make promcheck builds it into
// REROLL_E2E_BIN_DIR) on the repository's chart and returns the metric
// names it prints.
func promcheckNames(t *testing.T) []string {
	t.Helper()
	binDir := os.Getenv("REROLL_E2E_BIN_DIR")
	bin := filepath.Join(binDir, "promcheck")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: build it with `make promcheck`", err)
	}
	cmd := exec.Command(bin, "--chart", filepath.Join(testEnv.repoRoot, "charts", "reroll"), "--helm", filepath.Join(binDir, "helm"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("promcheck: %v\n%s", err, stderr.String())
	}
	return strings.Fields(string(out))
}

// exposedNames returns every series name a /metrics body can have: each
// family's name from its # TYPE line, with _bucket, _sum and _count for a
// histogram and _sum and _count for a summary, and each sample's name.
func exposedNames(body string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 {
				continue
			}
			names[f[0]] = true
			switch f[1] {
			case "histogram":
				names[f[0]+"_bucket"], names[f[0]+"_sum"], names[f[0]+"_count"] = true, true, true
			case "summary":
				names[f[0]+"_sum"], names[f[0]+"_count"] = true, true
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// sortedNames returns the keys of names in order, for messages.
func sortedNames(names map[string]bool) []string {
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
