//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

// moduleCRD is a CustomResourceDefinition that another project ships in its
// Go module, pinned to one version: the test installs the project's own
// CRD, schema and all, not a stand-in.
type moduleCRD struct {
	module, version, path string
}

// The CRDs the suite takes from other projects' modules. `go mod download`
// fetches each through the Go module proxy, checked against the checksum
// database like any dependency.
var (
	argoRolloutCRD    = moduleCRD{"github.com/argoproj/argo-rollouts", "v1.8.3", "manifests/crds/rollout-crd.yaml"}
	knativeServiceCRD = moduleCRD{"knative.dev/serving", "v0.51.0", "config/core/300-resources/service.yaml"}
)

// dynamicClient returns a dynamic client of the test cluster.
func dynamicClient(t *testing.T) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(testEnv.config)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

// installModuleCRD installs c, if it is not installed yet, and waits until
// it is served. CRDs are cluster-wide and tests in parallel share them, so
// it is never deleted; the control plane goes with the suite.
func installModuleCRD(t *testing.T, c moduleCRD) {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", c.module+"@"+c.version)
	cmd.Dir = t.TempDir() // outside any module: the version is the one asked for
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s@%s: %v\n%s", c.module, c.version, err, out)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s@%s said %s (%v)", c.module, c.version, out, err)
	}
	raw, err := os.ReadFile(filepath.Join(mod.Dir, c.path))
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{}
	if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096).Decode(&crd.Object); err != nil {
		t.Fatalf("%s: %v", c.path, err)
	}
	crds := dynamicClient(t).Resource(crdGVR)
	if _, err := crds.Create(context.Background(), crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating the CRD of %s: %v", c.module, err)
	}
	waitFor(t, "CRD "+crd.GetName()+" to be established", func(ctx context.Context) (bool, error) {
		u, err := crds.Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conditions {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// setStatus writes the status of a custom resource as its controller would,
// for the generation it has now: status returns the status for that
// generation. It retries on conflicts with reroll's writes.
func setStatus(t *testing.T, gvr schema.GroupVersionResource, ns, name string, status func(generation int64) map[string]any) {
	t.Helper()
	res := dynamicClient(t).Resource(gvr).Namespace(ns)
	waitFor(t, "writing the status of "+name, func(ctx context.Context) (bool, error) {
		u, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		u.Object["status"] = status(u.GetGeneration())
		_, err = res.UpdateStatus(ctx, u, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// nestedString reads a string field of a custom resource.
func nestedString(t *testing.T, ctx context.Context, gvr schema.GroupVersionResource, ns, name string, path ...string) (string, error) {
	t.Helper()
	u, err := dynamicClient(t).Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	v, _, err := unstructured.NestedString(u.Object, path...)
	return v, err
}

// generationString formats a generation as Argo writes
// status.observedGeneration: a string.
func generationString(g int64) string { return strconv.FormatInt(g, 10) }
