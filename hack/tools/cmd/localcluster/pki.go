package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// keyPair is a certificate with its private key, both also PEM-encoded.
type keyPair struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// pki holds every credential the control plane needs, plus the paths of the
// files they were written to.
type pki struct {
	dir string

	ca        *keyPair // cluster CA: serving and client certificates
	apiserver *keyPair // kube-apiserver serving certificate
	admin     *keyPair // admin client (O=system:masters)
	kcm       *keyPair // kube-controller-manager client
	scheduler *keyPair // kube-scheduler client (--with-nodes)
	// kubeletClient is kube-apiserver's client certificate for kubelet's
	// API (logs, exec); O=system:masters passes kubelet's webhook
	// authorization.
	kubeletClient *keyPair
	frontProxy    *keyPair // front-proxy CA (aggregation layer request headers)
	proxyCli      *keyPair // front-proxy client used by kube-apiserver
	saKey         *ecdsa.PrivateKey
}

// path returns the absolute path of a file in the PKI directory.
func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// newPKI generates a fresh CA, serving and client certificates and the
// ServiceAccount signing key, and writes them (PEM) into dir.
func newPKI(dir string) (*pki, error) {
	p := &pki{dir: dir}
	var err error
	if p.ca, err = newCA("localcluster-ca"); err != nil {
		return nil, err
	}
	if p.frontProxy, err = newCA("localcluster-front-proxy-ca"); err != nil {
		return nil, err
	}
	if p.apiserver, err = p.ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local",
		},
		// 10.0.0.1 is the "kubernetes" Service IP in --service-cluster-ip-range.
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 0, 0, 1)},
	}); err != nil {
		return nil, err
	}
	if p.admin, err = p.ca.issue(clientTemplate("localcluster-admin", "system:masters")); err != nil {
		return nil, err
	}
	if p.kcm, err = p.ca.issue(clientTemplate("system:kube-controller-manager")); err != nil {
		return nil, err
	}
	if p.scheduler, err = p.ca.issue(clientTemplate("system:kube-scheduler")); err != nil {
		return nil, err
	}
	if p.kubeletClient, err = p.ca.issue(clientTemplate("kube-apiserver-kubelet-client", "system:masters")); err != nil {
		return nil, err
	}
	if p.proxyCli, err = p.frontProxy.issue(clientTemplate("front-proxy-client")); err != nil {
		return nil, err
	}
	if p.saKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	return p, p.write()
}

// write stores all certificates and keys as PEM files in p.dir.
func (p *pki) write() error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	saPriv, err := ecKeyPEM(p.saKey)
	if err != nil {
		return err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&p.saKey.PublicKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"sa.key": saPriv,
		"sa.pub": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	}
	for name, kp := range map[string]*keyPair{
		"ca": p.ca, "apiserver": p.apiserver, "admin": p.admin, "kube-controller-manager": p.kcm,
		"kube-scheduler": p.scheduler, "apiserver-kubelet-client": p.kubeletClient,
		"front-proxy-ca": p.frontProxy, "front-proxy-client": p.proxyCli,
	} {
		files[name+".crt"] = kp.certPEM
		files[name+".key"] = kp.keyPEM
	}
	for name, data := range files {
		if err := os.WriteFile(p.path(name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// clientTemplate returns a client-auth certificate template for user cn in
// the given groups (organizations).
func clientTemplate(cn string, groups ...string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// newCA creates a self-signed ECDSA P-256 certificate authority.
func newCA(cn string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return sign(tmpl, key, nil, key, 10*365*24*time.Hour)
}

// issue signs a new leaf certificate for tmpl with the CA ca.
func (ca *keyPair) issue(tmpl *x509.Certificate) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	return sign(tmpl, key, ca.cert, ca.key, 365*24*time.Hour)
}

// sign fills in serial number and validity of tmpl and signs it with
// parentKey (self-signed when parent is nil).
func sign(tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, validity time.Duration) (*keyPair, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour) // tolerate clock skew
	tmpl.NotAfter = now.Add(validity)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ecKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  keyPEM,
	}, nil
}

// ecKeyPEM encodes an ECDSA private key as an "EC PRIVATE KEY" PEM block,
// the format every Kubernetes component and etcd accepts.
func ecKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// kubeconfig renders a self-contained kubeconfig (CA and client credentials
// embedded) for server, authenticating with the client certificate kp.
func kubeconfig(server string, ca, kp *keyPair, user string) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: localcluster
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: localcluster
  context:
    cluster: localcluster
    user: %s
current-context: localcluster
`, server, b64(ca.certPEM), user, b64(kp.certPEM), b64(kp.keyPEM), user)
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so a concurrent reader never sees a partial file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Chmod(tmp, perm)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
	}
	return werr
}
