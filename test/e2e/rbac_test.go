//go:build e2e

package e2e

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// The identity the manifests create for reroll.
const (
	rerollNamespace      = "reroll-system"
	rerollServiceAccount = "reroll"
)

// readManifests decodes every object under manifests/, overlays included,
// but not the kustomization files.
func readManifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(testEnv.repoRoot, "manifests"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".yaml") && d.Name() != "kustomization.yaml" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
		for {
			u := &unstructured.Unstructured{}
			err := dec.Decode(&u.Object)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(u.Object) > 0 {
				objs = append(objs, u)
			}
		}
		f.Close()
	}
	if len(objs) == 0 {
		t.Fatal("no manifests found")
	}
	return objs
}

// applyManifests server-side-applies objects; with dryRun the API server
// validates and admits them (RBAC escalation checks, Pod Security) without
// persisting anything.
func applyManifests(t *testing.T, objs []*unstructured.Unstructured, dryRun bool) {
	t.Helper()
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(testEnv.config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(testEnv.client.Discovery()))
	opts := metav1.PatchOptions{FieldManager: "reroll-e2e", Force: ptr.To(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		body, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if u.GetNamespace() != "" {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, opts); err != nil {
			t.Fatalf("apply (dry run %v) %s %s: %v", dryRun, gvk.Kind, u.GetName(), err)
		}
	}
}

// tokenRequest asks for a one-hour ServiceAccount token.
func tokenRequest() *authenticationv1.TokenRequest {
	return &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
}

// serviceAccountToken mints a real token for reroll's ServiceAccount.
func serviceAccountToken(t *testing.T) string {
	t.Helper()
	tr, err := testEnv.client.CoreV1().ServiceAccounts(rerollNamespace).CreateToken(context.Background(), rerollServiceAccount,
		tokenRequest(), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// tokenKubeconfig writes a kubeconfig that authenticates with token.
func tokenKubeconfig(t *testing.T, token string) string {
	t.Helper()
	ca, err := os.ReadFile(testEnv.info.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: testEnv.info.Server, CertificateAuthorityData: ca}
	cfg.AuthInfos["reroll"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["reroll"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "reroll"}
	cfg.CurrentContext = "reroll"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestManifests applies manifests/ to the real API server (a server-side
// dry run of everything, and the namespace, ServiceAccount and RBAC for
// real), then runs reroll as that ServiceAccount, out of cluster with a
// kubeconfig and in cluster with a mounted token, and shows the identity
// can do what reroll needs and nothing more.
func TestManifests(t *testing.T) {
	t.Parallel()
	objs := readManifests(t)
	var rbac []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() != "Deployment" {
			rbac = append(rbac, u)
		}
	}
	// The namespaced overlay's example namespace, for its Role.
	if err := createNamespace("apps"); err != nil {
		t.Fatal(err)
	}
	applyManifests(t, rbac, false) // the namespace must exist for the dry run
	applyManifests(t, objs, true)

	token := serviceAccountToken(t)
	t.Run("out of cluster with --kubeconfig", func(t *testing.T) {
		ns := newNamespace(t)
		kubeconfig := tokenKubeconfig(t, token)
		cmd := exec.Command(testEnv.controller, append([]string{
			"--kubeconfig=" + kubeconfig, "--namespace=" + ns,
			"--debounce=100ms", "--v=4"}, localServers()...)...)
		cmd.Env = append(os.Environ(), "POD_NAMESPACE="+rerollNamespace)
		r := startRerollCommand(t, cmd)
		rollScenario(t, ns)
		assertNoForbidden(t, r)
	})
	t.Run("in cluster with a mounted ServiceAccount token", func(t *testing.T) {
		ns := newNamespace(t)
		r := startInCluster(t, token, ns)
		rollScenario(t, ns)
		assertNoForbidden(t, r)
		if r.countLog("Connected") == 0 {
			t.Error("no connection logged")
		}
	})
	t.Run("least privilege", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", tokenKubeconfig(t, token))
		if err != nil {
			t.Fatal(err)
		}
		client := kubernetes.NewForConfigOrDie(cfg)
		assertAccess(t, client)
		ns := newNamespace(t)
		ctx := context.Background()
		_, err = client.AppsV1().Deployments(ns).Create(ctx, testDeployment(ns, "x", nil, nil), metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("creating a Deployment as reroll: %v, want Forbidden", err)
		}
		create(t, configMap(ns, "victim", nil))
		if err := client.CoreV1().ConfigMaps(ns).Delete(ctx, "victim", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("deleting a ConfigMap as reroll: %v, want Forbidden", err)
		}
	})
}

// startInCluster runs reroll as a pod would see it: no kubeconfig, the
// KUBERNETES_SERVICE_* variables set, and the ServiceAccount token, CA and
// namespace mounted at the standard path, inside a private mount namespace.
func startInCluster(t *testing.T, token, ns string) *rerollProcess {
	t.Helper()
	if err := exec.Command("unshare", "--mount", "--propagation", "private", "true").Run(); err != nil {
		t.Skipf("skipping the in-cluster test: unshare --mount is not permitted here (%v)", err)
	}
	dir := t.TempDir()
	ca, err := os.ReadFile(testEnv.info.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"token": []byte(token), "ca.crt": ca, "namespace": []byte(rerollNamespace)} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(testEnv.info.Server)
	if err != nil {
		t.Fatal(err)
	}
	// A tmpfs over /run hides the host's /run from this process only, so the
	// mount point can be made without touching the host's file system.
	script := `set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
mount --bind "$SA_DIR" /run/secrets/kubernetes.io/serviceaccount
exec "$REROLL" --namespace="$WATCH_NS" --debounce=100ms --v=4 \
	--metrics-bind-address=127.0.0.1:0 --health-probe-bind-address=127.0.0.1:0`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(), // no ~/.kube/config to fall back on
		"SA_DIR=" + dir,
		"REROLL=" + testEnv.controller,
		"WATCH_NS=" + ns,
		"KUBERNETES_SERVICE_HOST=" + u.Hostname(),
		"KUBERNETES_SERVICE_PORT=" + u.Port(),
	}
	return startRerollCommand(t, cmd)
}

// rollScenario creates a consumer of a ConfigMap, waits for its adoption,
// changes the ConfigMap and waits for the roll.
func rollScenario(t *testing.T, ns string) {
	t.Helper()
	create(t, configMap(ns, "cfg", map[string]string{"k": "1"}), testDeployment(ns, "web", auto(), envFrom("cfg")))
	waitAdopted(t, ns, "web")
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "2" })
	waitReplicaSets(t, ns, "web", 2)
	waitEvent(t, ns, "web", "Rolled")
}

// assertNoForbidden fails if reroll's log mentions a Forbidden error.
func assertNoForbidden(t *testing.T, r *rerollProcess) {
	t.Helper()
	if log := r.log.String(); strings.Contains(strings.ToLower(log), "forbidden") {
		t.Errorf("reroll's log mentions forbidden:\n%s", log)
	}
}

// assertAccess checks, with SelfSubjectAccessReviews as reroll, that every
// permission reroll needs is granted and that others are not.
func assertAccess(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	type access struct {
		verb, group, resource, namespace string
	}
	allowed := []access{
		{"list", "", "configmaps", ""}, {"watch", "", "configmaps", ""},
		{"list", "", "secrets", ""}, {"watch", "", "secrets", ""}, {"get", "", "secrets", rerollNamespace},
		{"list", "", "pods", ""}, {"watch", "", "pods", ""},
		{"create", "", "secrets", rerollNamespace},
		{"list", "apps", "deployments", ""}, {"watch", "apps", "deployments", ""}, {"patch", "apps", "deployments", "default"},
		{"create", "events.k8s.io", "events", "default"}, {"patch", "events.k8s.io", "events", "default"},
		{"get", "coordination.k8s.io", "leases", rerollNamespace}, {"create", "coordination.k8s.io", "leases", rerollNamespace},
		{"update", "coordination.k8s.io", "leases", rerollNamespace},
	}
	denied := []access{
		{"create", "apps", "deployments", "default"}, {"update", "apps", "deployments", "default"}, {"delete", "apps", "deployments", "default"},
		{"delete", "", "configmaps", "default"}, {"delete", "", "secrets", rerollNamespace}, {"update", "", "secrets", rerollNamespace},
		{"patch", "", "secrets", "default"}, {"create", "", "secrets", "default"}, {"update", "", "configmaps", "default"},
		{"create", "", "pods", "default"}, {"delete", "", "pods", "default"},
		{"get", "", "nodes", ""}, {"delete", "", "namespaces", ""}, {"create", "rbac.authorization.k8s.io", "clusterrolebindings", ""},
		{"delete", "events.k8s.io", "events", "default"}, {"create", "", "serviceaccounts/token", rerollNamespace},
		{"delete", "coordination.k8s.io", "leases", rerollNamespace}, {"update", "coordination.k8s.io", "leases", "default"},
	}
	check := func(a access, want bool) {
		review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != want {
			t.Errorf("%s %s.%s in %q: allowed=%v, want %v", a.verb, a.resource, a.group, a.namespace, review.Status.Allowed, want)
		}
	}
	for _, a := range allowed {
		check(a, true)
	}
	for _, a := range denied {
		check(a, false)
	}
}
