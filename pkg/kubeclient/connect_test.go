package kubeclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The controller's namespace comes from $POD_NAMESPACE, else the
// ServiceAccount's namespace file, else the flag.
func TestControllerNamespace(t *testing.T) {
	file := filepath.Join(t.TempDir(), "namespace")
	if got := controllerNamespace("from-env", file, "flag"); got != "from-env" {
		t.Errorf("with POD_NAMESPACE: %q", got)
	}
	if got := controllerNamespace("", file, "flag"); got != "flag" {
		t.Errorf("without a namespace file: %q", got)
	}
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := controllerNamespace("", file, "flag"); got != "from-file" {
		t.Errorf("with a namespace file: %q", got)
	}
}

// Connect builds every client against the kubeconfig's server and checks
// that it answers; a server that does not answer fails with its address.
func TestConnect(t *testing.T) {
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agents = append(agents, r.UserAgent())
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"gitVersion":"v1.37.2"}`))
	}))
	defer srv.Close()
	o := ConnectOptions{Master: srv.URL, Kubeconfig: writeKubeconfig(t), QPS: 5, Burst: 10, UserAgent: "reroll/test", ProbeTimeout: time.Second}
	c, err := Connect(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if c.Client == nil || c.Dynamic == nil || c.Events == nil || c.Probe == nil || c.FailFast == nil {
		t.Fatalf("clients %+v", c)
	}
	if len(agents) != 1 || !strings.HasSuffix(agents[0], "reroll/test") {
		t.Errorf("user agents %q", agents)
	}
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Connect(ctx, o); err == nil || !strings.Contains(err.Error(), "cannot reach the Kubernetes API server at "+srv.URL) {
		t.Errorf("closed server: %v", err)
	}
}

// writeKubeconfig writes a kubeconfig whose server --master overrides.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
