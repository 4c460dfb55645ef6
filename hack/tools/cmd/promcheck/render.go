package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// renderNamespace is the release namespace the chart is rendered in; the
// rules' default selector is namespace="reroll-system".
const renderNamespace = "reroll-system"

// dashboardLabel is the label Grafana's dashboard sidecar looks for, the
// chart's default dashboard.label.
const dashboardLabel = "grafana_dashboard"

// source is one rendered document promcheck reads: a dashboard's JSON or a
// PrometheusRule's rule groups, with where it came from.
type source struct {
	name    string
	content []byte
}

// rendered is what the chart renders for Prometheus and Grafana.
type rendered struct {
	dashboards []source // Grafana dashboard JSON
	rules      []source // rule groups, as a Prometheus rules file
}

// checkValues are the --set values the chart is rendered with: the
// dashboard and the PrometheusRule on, and Argo Rollouts among the kinds so
// that RerollWatchedKindMissing is rendered too. Every threshold keeps its
// default.
func checkValues() []string {
	return []string{"dashboard.enabled=true", "prometheusRule.enabled=true", "kinds={deployments,rollouts}"}
}

// repoRoot returns the repository holding the working directory: the
// nearest directory up from it with charts/reroll/Chart.yaml.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(chartDir(dir), "Chart.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no charts/reroll/Chart.yaml above the working directory; pass --chart")
		}
		dir = parent
	}
}

// chartDir is where the repository at root keeps reroll's chart.
func chartDir(root string) string { return filepath.Join(root, "charts", "reroll") }

// helmCommand returns the command that runs Helm: the helm flag if set,
// else $REROLL_BIN_DIR/helm if it exists (make helm installs the Makefile's
// HELM there), else go run of the Makefile's HELM, found from the chart.
func helmCommand(helmFlag, chart string) ([]string, error) {
	if helmFlag != "" {
		return []string{helmFlag}, nil
	}
	if dir := os.Getenv("REROLL_BIN_DIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "helm")); err == nil {
			return []string{filepath.Join(dir, "helm")}, nil
		}
	}
	makefile := filepath.Join(chart, "..", "..", "Makefile")
	b, err := os.ReadFile(makefile)
	if err != nil {
		return nil, fmt.Errorf("finding the pinned Helm: %w", err)
	}
	m := regexp.MustCompile(`(?m)^HELM\s*:=\s*(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		return nil, fmt.Errorf("finding the pinned Helm: no HELM := line in %s", makefile)
	}
	return []string{"go", "run", string(m[1])}, nil
}

// renderChart runs helm template on chart with values and returns its
// dashboards and rule groups.
func renderChart(chart string, helm []string, values []string) (rendered, error) {
	args := append(helm[1:], "template", "reroll", chart, "--namespace", renderNamespace)
	for _, v := range values {
		args = append(args, "--set", v)
	}
	cmd := exec.Command(helm[0], args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return rendered{}, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return splitRendered(out)
}

// object is what promcheck reads of a rendered Kubernetes object.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec map[string]any    `json:"spec"`
}

// splitRendered picks, from helm template's output, each dashboard of the
// ConfigMaps labelled for Grafana's sidecar and the rule groups of each
// PrometheusRule.
func splitRendered(manifests []byte) (rendered, error) {
	var r rendered
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifests)))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return r, err
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return r, err
		}
		switch {
		case o.Kind == "ConfigMap" && o.Metadata.Labels[dashboardLabel] != "":
			for _, key := range sortedKeys(o.Data) {
				r.dashboards = append(r.dashboards, source{name: "ConfigMap " + o.Metadata.Name + " " + key, content: []byte(o.Data[key])})
			}
		case o.Kind == "PrometheusRule":
			groups, err := yaml.Marshal(o.Spec)
			if err != nil {
				return r, err
			}
			r.rules = append(r.rules, source{name: "PrometheusRule " + o.Metadata.Name, content: groups})
		}
	}
	return r, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
