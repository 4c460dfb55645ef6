package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPKI checks that the generated certificates chain to their CAs and
// carry the names and groups the components rely on.
func TestPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.cert)
	for _, name := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc", "10.0.0.1"} {
		if _, err := p.apiserver.cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	clientUsage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	for _, kp := range []*keyPair{p.admin, p.kcm, p.scheduler} {
		if _, err := kp.cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: clientUsage}); err != nil {
			t.Errorf("client certificate %s: %v", kp.cert.Subject.CommonName, err)
		}
	}
	if got := p.admin.cert.Subject.Organization; len(got) != 1 || got[0] != "system:masters" {
		t.Errorf("admin groups %v, want [system:masters]", got)
	}
	proxyRoots := x509.NewCertPool()
	proxyRoots.AddCert(p.frontProxy.cert)
	if _, err := p.proxyCli.cert.Verify(x509.VerifyOptions{Roots: proxyRoots, KeyUsages: clientUsage}); err != nil {
		t.Errorf("front-proxy client certificate: %v", err)
	}
	for _, f := range []string{"ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-client.key"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if block, _ := pem.Decode(data); block == nil {
			t.Errorf("%s is not PEM", f)
		}
	}
}

// TestKubeconfigAndAtomicWrite checks the kubeconfig content and that
// writeFileAtomic leaves no temporary files behind.
func TestKubeconfigAndAtomicWrite(t *testing.T) {
	p, err := newPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kc := string(kubeconfig("https://127.0.0.1:6443", p.ca, p.admin, "admin"))
	for _, want := range []string{"server: https://127.0.0.1:6443", "certificate-authority-data: ", "client-key-data: ", "current-context: localcluster"} {
		if !strings.Contains(kc, want) {
			t.Errorf("kubeconfig lacks %q:\n%s", want, kc)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.json")
	for _, content := range []string{"first", "second"} {
		if err := writeFileAtomic(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if data, _ := os.ReadFile(path); string(data) != "second" {
		t.Errorf("content %q, want %q", data, "second")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in dir, want 1 (temporary file left behind?)", len(entries))
	}
}

// TestNodeSchedulable checks the fake Node readiness check.
func TestNodeSchedulable(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"status":{"conditions":[{"type":"Ready","status":"True"}]}}`, true},
		{`{"status":{"conditions":[{"type":"Ready","status":"False"}]}}`, false},
		{`{"spec":{"taints":[{"key":"node.kubernetes.io/not-ready","effect":"NoSchedule"}]},"status":{"conditions":[{"type":"Ready","status":"True"}]}}`, false},
		{`{}`, false},
	} {
		if err := nodeSchedulable([]byte(tc.body)); (err == nil) != tc.ok {
			t.Errorf("nodeSchedulable(%s) = %v, want ok=%v", tc.body, err, tc.ok)
		}
	}
	// The real node's own taint does not keep it from being ready.
	own := `{"spec":{"taints":[{"key":"reroll.dev/node","effect":"NoSchedule"}]},"status":{"conditions":[{"type":"Ready","status":"True"}]}}`
	if err := nodeSchedulable([]byte(own), realNodeLabel); err != nil {
		t.Errorf("nodeSchedulable with its own taint tolerated: %v", err)
	}
	if err := nodeSchedulable([]byte(own)); err == nil {
		t.Error("nodeSchedulable with an untolerated taint: nil")
	}
}
