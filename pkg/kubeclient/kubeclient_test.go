package kubeclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigWithoutCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("HOME", t.TempDir())
	_, err := Config("", "")
	if err == nil || !strings.Contains(err.Error(), "no cluster to connect to") {
		t.Errorf("error = %v, want a clear 'no cluster' error", err)
	}
}

func TestConfigFromKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", path)
	for _, explicit := range []string{"", path} {
		cfg, err := Config("", explicit)
		if err != nil || cfg.Host != "https://127.0.0.1:6443" {
			t.Errorf("Config(%q) = %v, %v", explicit, cfg, err)
		}
	}
	cfg, err := Config("https://10.1.2.3:443", path)
	if err != nil || cfg.Host != "https://10.1.2.3:443" {
		t.Errorf("--master did not override: %v, %v", cfg, err)
	}
}
