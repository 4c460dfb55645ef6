package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

const (
	// csiReplicas is the replica count of every Deployment of the CSI
	// variants, so how many SecretProviderClassPodStatuses each has.
	csiReplicas = 3
	// csiDriver is the Secrets Store CSI driver's name.
	csiDriver = "secrets-store.csi.k8s.io"
	// csiClass is the SecretProviderClass every Deployment mounts: one per
	// namespace, of the same name.
	csiClass = "bench-vault"
	// csiObjectID is the one object each class mounts.
	csiObjectID = "secret/password"
	// csiCRDModule and csiCRDPath locate the driver's CRD of its pod
	// statuses, which the bench installs.
	csiCRDModule = "sigs.k8s.io/secrets-store-csi-driver@v1.5.0"
	csiCRDPath   = "config/crd/bases/secrets-store.csi.x-k8s.io_secretproviderclasspodstatuses.yaml"
	// replicasPoll is how often the bench counts the Deployments' Pods.
	replicasPoll = 2 * time.Second
)

var (
	// providerClassPodStatuses is the driver's resource.
	providerClassPodStatuses = schema.GroupVersionResource{Group: "secrets-store.csi.x-k8s.io", Version: "v1", Resource: "secretproviderclasspodstatuses"}
	// crdResource is where CRDs are created.
	crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// runMemoryCSI is the memory scenario with the driver's statuses seeded
// (see csiVariant) and watched by reroll (--secrets-store-csi).
func runMemoryCSI(ctx context.Context, e *env, res *scenarioResult) error {
	return runMemoryVariant(ctx, e, res, csiVariant(true))
}

// runMemoryCSIBaseline seeds what runMemoryCSI does and runs reroll without
// --secrets-store-csi: the difference between the two is what watching the
// statuses costs.
func runMemoryCSIBaseline(ctx context.Context, e *env, res *scenarioResult) error {
	return runMemoryVariant(ctx, e, res, csiVariant(false))
}

// csiVariant is the memory scenario with csiReplicas replicas per
// Deployment, each mounting its namespace's csiClass through a CSI volume,
// the driver's CRD and one SecretProviderClassPodStatus per Pod. reroll
// runs with --profiling, for its live heap at the end; with watch, also
// with --secrets-store-csi, and then a rotation must roll the class's
// consumers.
func csiVariant(watch bool) memoryVariant {
	v := memoryVariant{deployment: mountProviderClass, seed: seedProviderClassPods, args: []string{"--profiling"}, after: addLiveHeap}
	if watch {
		v.args = append(v.args, "--secrets-store-csi")
		v.after = func(ctx context.Context, e *env, res *scenarioResult, r *reroll, tr *tracker, w memoryWorkloads) error {
			if err := addLiveHeap(ctx, e, res, r, tr, w); err != nil {
				return err
			}
			return rotateProviderClass(ctx, e, res, r, tr, w)
		}
	}
	return v
}

// mountProviderClass gives d csiReplicas replicas and a CSI volume of
// csiClass.
func mountProviderClass(d *appsv1.Deployment) {
	d.Spec.Replicas = ptr.To[int32](csiReplicas)
	spec := &d.Spec.Template.Spec
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "vault", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
		Driver: csiDriver, ReadOnly: ptr.To(true), VolumeAttributes: map[string]string{"secretProviderClass": csiClass},
	}}})
	spec.Containers[0].VolumeMounts = append(spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "vault", MountPath: "/mnt/vault", ReadOnly: true})
}

// csiPodName returns the name of Pod n of Deployment deploy, shaped like a
// Deployment's Pod names: <deploy>-<hash>-<n>.
func csiPodName(deploy string, n int) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(deploy)) // never fails
	return deploy + "-" + rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10)) + "-" + strconv.Itoa(n)
}

// providerClassPodStatus returns the status the driver writes for pod,
// which mounted class with csiObjectID at version.
func providerClassPodStatus(namespace, pod, class, version string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": providerClassPodStatuses.GroupVersion().String(),
		"kind":       "SecretProviderClassPodStatus",
		"metadata":   map[string]any{"name": pod + "-" + namespace + "-" + class, "namespace": namespace},
		"status": map[string]any{
			"podName": pod, "secretProviderClassName": class, "mounted": true, "targetPath": "/var/lib/kubelet/pods/x",
			"objects": []any{map[string]any{"id": csiObjectID, "version": version}},
		},
	}}
}

// dynamicClient returns a dynamic client of the cluster with the bench's
// rate limits.
func (e *env) dynamicClient() (dynamic.Interface, error) {
	cfg := rest.CopyConfig(e.cluster.config)
	cfg.QPS, cfg.Burst = driverQPS, driverBurst
	return dynamic.NewForConfig(rest.AddUserAgent(cfg, "reroll-bench"))
}

// seedProviderClassPods installs the driver's CRD, creates a status at
// version v1 for each Pod of each Deployment (as many as its replicas),
// and waits until kube-controller-manager has created those Pods.
func seedProviderClassPods(ctx context.Context, e *env, res *scenarioResult, w memoryWorkloads) error {
	dyn, err := e.dynamicClient()
	if err != nil {
		return err
	}
	if err := e.installCRD(ctx, dyn, csiCRDModule, csiCRDPath); err != nil {
		return err
	}
	var created atomic.Int64
	err = forEach(ctx, w.n, seedWorkers, func(ctx context.Context, i int) error {
		d := w.deployment(i)
		for n := range int(ptr.Deref(d.Spec.Replicas, 1)) {
			s := providerClassPodStatus(d.Namespace, csiPodName(d.Name, n), csiClass, "v1")
			if _, err := dyn.Resource(providerClassPodStatuses).Namespace(d.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating SecretProviderClassPodStatus %s/%s: %w", d.Namespace, s.GetName(), err)
			}
			created.Add(1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	res.Params["replicas"] = csiReplicas
	res.Params["secretProviderClassPodStatuses"] = created.Load()
	e.log.printf("created %d SecretProviderClassPodStatuses", created.Load())
	return e.waitReplicas(ctx, int(created.Load()))
}

// installCRD installs the CRD at path in module (module@version), read
// from the module cache through `go mod download`, and waits until it is
// established.
func (e *env) installCRD(ctx context.Context, dyn dynamic.Interface, module, path string) error {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = e.dir // outside any module: the version is the one asked for
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go mod download %s: %w", module, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download %s said %s (%v)", module, out, err)
	}
	raw, err := os.ReadFile(filepath.Join(mod.Dir, path))
	if err != nil {
		return err
	}
	crd := &unstructured.Unstructured{}
	if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096).Decode(&crd.Object); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	crds := dyn.Resource(crdResource)
	if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating CRD %s: %w", crd.GetName(), err)
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
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

// waitReplicas polls the scenario's Deployments until their status counts
// want Pods in all, so that kube-controller-manager's work is done before
// reroll starts.
func (e *env) waitReplicas(ctx context.Context, want int) error {
	timeout := 2*time.Minute + time.Duration(want)*10*time.Millisecond
	have := 0
	err := wait.PollUntilContextTimeout(ctx, replicasPoll, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := e.cluster.client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: labelScenario + "=" + e.scenario})
		if err != nil {
			return false, err
		}
		have = 0
		for _, d := range list.Items {
			have += int(d.Status.Replicas)
		}
		return have >= want, nil
	})
	if err != nil {
		return fmt.Errorf("the Deployments have %d of %d Pods: %w", have, want, err)
	}
	e.log.printf("the Deployments have their %d Pods", want)
	return nil
}

// addLiveHeap records reroll's live heap after a forced GC.
func addLiveHeap(ctx context.Context, e *env, res *scenarioResult, r *reroll, tr *tracker, w memoryWorkloads) error {
	live, err := r.liveHeap(ctx)
	if err != nil {
		return err
	}
	res.add("live heap after a forced GC at end", mib(live), "MiB")
	return nil
}

// rotateProviderClass changes the version of the object Pod 0 of the
// first Deployment mounts, as the driver does on a rotation, and records
// how long until every consumer of that class in that namespace rolled,
// and how many UnmappedPod warnings reroll gave (a status whose Pod it
// could not map to a workload).
func rotateProviderClass(ctx context.Context, e *env, res *scenarioResult, r *reroll, tr *tracker, w memoryWorkloads) error {
	dyn, err := e.dynamicClient()
	if err != nil {
		return err
	}
	d := w.deployment(0)
	keys := w.keysIn(0)
	statuses := dyn.Resource(providerClassPodStatuses).Namespace(d.Namespace)
	s := providerClassPodStatus(d.Namespace, csiPodName(d.Name, 0), csiClass, "v2")
	old, err := statuses.Get(ctx, s.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.SetResourceVersion(old.GetResourceVersion())
	before := tr.counts()
	began := time.Now()
	if _, err := statuses.Update(ctx, s, metav1.UpdateOptions{FieldManager: benchFieldManager}); err != nil {
		return fmt.Errorf("rotating %s/%s: %w", d.Namespace, s.GetName(), err)
	}
	last, err := tr.waitChanged(ctx, keys, before, rollTimeout)
	if err != nil {
		return err
	}
	res.add(fmt.Sprintf("CSI rotation to its %d consumers rolled", len(keys)), last.Sub(began).Seconds(), "s")
	_, m, err := r.waitQuiet(ctx, quietWindow, time.Minute)
	if err != nil {
		return err
	}
	rolled, multi, _ := rollDiff(before, tr.counts())
	res.addTarget("  Deployments rolled by the rotation", float64(rolled), "", target{Op: "==", Value: float64(len(keys))})
	res.addTarget("  rolled more than once", float64(multi), "", target{Op: "==", Value: 0})
	res.addTarget("UnmappedPod warnings", m.sum("reroll_warnings_total", "reason", "UnmappedPod"), "", target{Op: "==", Value: 0})
	return nil
}
