package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.workers != 8 || o.qps != 100 || o.burst != 200 || o.debounce != time.Second || o.hashKeySecret != "reroll-hash-key" || o.dryRun || o.autoAll {
		t.Errorf("unexpected defaults: %+v", o)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"workers":         {[]string{"--workers=0"}, "--workers must be at least 1"},
		"qps":             {[]string{"--kube-api-qps=-1"}, "--kube-api-qps must be positive"},
		"burst":           {[]string{"--kube-api-burst=0"}, "--kube-api-burst must be at least 1"},
		"debounce":        {[]string{"--debounce=-1s"}, "--debounce must not be negative"},
		"selector":        {[]string{"--config-selector=a in (b"}, "--config-selector:"},
		"hash key":        {[]string{"--hash-key-secret="}, "--hash-key-secret must not be empty"},
		"unknown flag":    {[]string{"--nope"}, "flag provided but not defined: -nope"},
		"positional":      {[]string{"extra"}, "unexpected arguments: extra"},
		"bad duration":    {[]string{"--debounce=soon"}, "invalid value"},
		"several at once": {[]string{"--workers=0", "--kube-api-burst=0"}, "--workers must be at least 1, not 0\n--kube-api-burst must be at least 1"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRestConfigWithoutCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("HOME", t.TempDir())
	_, err := restConfig("", "")
	if err == nil || !strings.Contains(err.Error(), "no cluster to connect to") {
		t.Errorf("error = %v, want a clear 'no cluster' error", err)
	}
}

func TestRestConfigFromKubeconfig(t *testing.T) {
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
		cfg, err := restConfig("", explicit)
		if err != nil || cfg.Host != "https://127.0.0.1:6443" {
			t.Errorf("restConfig(%q) = %v, %v", explicit, cfg, err)
		}
	}
	cfg, err := restConfig("https://10.1.2.3:443", path)
	if err != nil || cfg.Host != "https://10.1.2.3:443" {
		t.Errorf("--master did not override: %v, %v", cfg, err)
	}
}

func TestControllerNamespace(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "from-env")
	if got := controllerNamespace("flag"); got != "from-env" {
		t.Errorf("with POD_NAMESPACE: %q", got)
	}
	t.Setenv("POD_NAMESPACE", "")
	want := "flag"
	if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
		want = strings.TrimSpace(string(b))
	}
	if got := controllerNamespace("flag"); got != want {
		t.Errorf("without POD_NAMESPACE: %q, want %q", got, want)
	}
}

// The HTTP/2 stream window must reach the transport client-go really uses,
// and the config's own wrapper must still apply.
func TestLimitHTTP2StreamBuffer(t *testing.T) {
	var seen *http.Transport
	ownWrapperCalled := false
	cfg := &rest.Config{Host: "https://127.0.0.1:1", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		ownWrapperCalled = true
		seen = innermostTransport(rt)
		return rt
	}
	cfg.WrapTransport = limitHTTP2StreamBuffer(cfg.WrapTransport)
	if _, err := rest.HTTPClientFor(cfg); err != nil {
		t.Fatal(err)
	}
	if !ownWrapperCalled {
		t.Fatal("the config's own WrapTransport was not applied")
	}
	if seen == nil {
		t.Fatal("client-go did not hand the wrapper its *http.Transport")
	}
	if seen.HTTP2 == nil || seen.HTTP2.MaxReceiveBufferPerStream != http2StreamReceiveBuffer {
		t.Errorf("HTTP2 config = %+v, want MaxReceiveBufferPerStream %d", seen.HTTP2, http2StreamReceiveBuffer)
	}
	if rt := limitHTTP2StreamBuffer(nil)(http.DefaultTransport.(*http.Transport).Clone()); rt.(*http.Transport).HTTP2 == nil {
		t.Error("without a wrapper of its own, the transport was left alone")
	}
	if limitHTTP2StreamBuffer(nil)(http.DefaultTransport); http.DefaultTransport.(*http.Transport).HTTP2 != nil {
		t.Error("http.DefaultTransport was changed")
	}
}
