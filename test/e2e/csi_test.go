//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The Secrets Store CSI driver's CRD from its module; the test plays the
// driver by writing a SecretProviderClassPodStatus for each pod.
var (
	secretsStoreCRD = moduleCRD{"sigs.k8s.io/secrets-store-csi-driver", "v1.5.0",
		"config/crd/bases/secrets-store.csi.x-k8s.io_secretproviderclasspodstatuses.yaml"}
	podStatusGVR = schema.GroupVersionResource{Group: "secrets-store.csi.x-k8s.io", Version: "v1", Resource: "secretproviderclasspodstatuses"}
)

// setPodStatus writes the driver's status of a pod that mounted class
// with one object, "secret/password", at version.
func setPodStatus(t *testing.T, ns, pod, class, version string) {
	t.Helper()
	res := dynamicClient(t).Resource(podStatusGVR).Namespace(ns)
	name := fmt.Sprintf("%s-%s-%s", pod, ns, class)
	status := map[string]any{"podName": pod, "secretProviderClassName": class, "mounted": true, "targetPath": "/var/lib/kubelet/pods/x",
		"objects": []any{map[string]any{"id": "secret/password", "version": version}}}
	waitFor(t, "writing the driver's status of "+pod, func(ctx context.Context) (bool, error) {
		u, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			u = &unstructured.Unstructured{Object: map[string]any{"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClassPodStatus",
				"metadata": map[string]any{"name": name, "namespace": ns}, "status": status}}
			_, err = res.Create(ctx, u, metav1.CreateOptions{})
			return err == nil, nil
		}
		u.Object["status"] = status
		_, err = res.Update(ctx, u, metav1.UpdateOptions{})
		return err == nil, nil
	})
}

// A rotation by the Secrets Store CSI driver rolls each workload that mounts
// the class once: even when the class also syncs a Secret the workload
// consumes and both change together, and when the new pods of the roll
// report their own versions. The first versions the pods report roll
// nothing, and a status whose pod no watched workload runs gets a Warning.
func TestSecretsStoreCSIRotationRollsOnce(t *testing.T) {
	t.Parallel()
	installModuleCRD(t, secretsStoreCRD)
	ns := newNamespace(t)
	ctx := context.Background()
	create(t, secret(ns, "db-synced", map[string]string{"password": "v1"}))
	csi := func(s *corev1.PodSpec) {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: "vault", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
			Driver: "secrets-store.csi.k8s.io", VolumeAttributes: map[string]string{"secretProviderClass": "db"}}}})
		s.Containers[0].EnvFrom = append(s.Containers[0].EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "db-synced"}}})
	}
	create(t, testDeployment(ns, "app", auto(), csi),
		testDeployment(ns, "named", map[string]string{"secretproviderclass.reloader.stakater.com/reload": "db"}, csi))
	// A debounce long enough for the driver's writes and its synced
	// Secret to arrive as one burst, as --debounce does in production.
	r := startReroll(t, ns, "--secrets-store-csi", "--reloader-annotations", "--discovery-recheck-period=1s", "--debounce=2s")
	r.waitLog(1, "Watching the Secrets Store CSI driver's pod statuses")
	first := map[string]string{"app": waitAdopted(t, ns, "app"), "named": waitAdopted(t, ns, "named")}

	// The driver mounts v1 for the pods: recorded, not rolled.
	for _, pod := range []string{"app-5d8f7-aaaaa", "app-5d8f7-bbbbb", "named-6c9d8-ccccc"} {
		setPodStatus(t, ns, pod, "db", "v1")
	}
	for _, name := range []string{"app", "named"} {
		waitFor(t, name+" to record the first versions", func(ctx context.Context) (bool, error) {
			return getDeployment(t, ns, name).Annotations[annotationConsumed] != first[name], nil
		})
	}
	setPodStatus(t, ns, "stray-7f8e9-ddddd", "db", "v1")
	waitEvent(t, ns, "stray-7f8e9-ddddd-"+ns+"-db", "UnmappedPod")

	// A rotation: the driver remounts v2 in each pod and syncs the Secret.
	for _, pod := range []string{"app-5d8f7-aaaaa", "app-5d8f7-bbbbb", "named-6c9d8-ccccc"} {
		setPodStatus(t, ns, pod, "db", "v2")
	}
	updateSecret(t, ns, "db-synced", func(s *corev1.Secret) { s.Data["password"] = []byte("v2") })
	for _, name := range []string{"app", "named"} {
		waitEvent(t, ns, name, "Rolled")
	}
	// The roll's new pods mount v2 and the old pods' statuses go.
	setPodStatus(t, ns, "app-7e6f5-eeeee", "db", "v2")
	setPodStatus(t, ns, "named-8a7b6-fffff", "db", "v2")
	for _, old := range []string{"app-5d8f7-aaaaa", "app-5d8f7-bbbbb", "named-6c9d8-ccccc"} {
		if err := dynamicClient(t).Resource(podStatusGVR).Namespace(ns).Delete(ctx, old+"-"+ns+"-db", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until reroll looked at both after the last delete, then count.
	for _, name := range []string{"app", "named"} {
		lookAgain(t, r, ns, name)
		if n := r.countLog(`"Rolled"`, `workload="`+ns+"/"+name+`"`); n != 1 {
			t.Errorf("%s rolled %d times, want once", name, n)
		}
	}
}
