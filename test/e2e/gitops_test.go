//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/utils/ptr"
)

// gitopsManifest is the Deployment a GitOps tool keeps applying: it says
// nothing of reroll's annotations, which reroll owns.
func gitopsManifest(ns string) *appsv1.Deployment {
	d := testDeployment(ns, "web", auto(), envFrom("cfg"))
	d.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	return d
}

// serverSideApply applies d with server-side apply as manager, forcing
// conflicts as Argo CD and Flux do.
func serverSideApply(t *testing.T, d *appsv1.Deployment, manager string) {
	t.Helper()
	body, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	_, err = testEnv.client.AppsV1().Deployments(d.Namespace).Patch(context.Background(), d.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: manager, Force: ptr.To(true)})
	if err != nil {
		t.Fatalf("server-side apply as %s: %v", manager, err)
	}
}

// rerollAnnotationsOf returns reroll's annotations on a Deployment and its
// pod template.
func rerollAnnotationsOf(d *appsv1.Deployment) (consumed, rollout, hash string) {
	return d.Annotations[annotationConsumed], d.Annotations["reroll.dev/rollout"], d.Spec.Template.Annotations[annotationConfigHash]
}

// TestGitOpsServerSideApply: a workload that Argo CD or Flux applies with
// server-side apply, under its own field manager, is rolled by reroll; the
// same manifest applied again conflicts with nothing, leaves reroll's
// annotations in place, and rolls nothing more.
func TestGitOpsServerSideApply(t *testing.T) {
	t.Parallel()
	for _, manager := range []string{"argocd-controller", "kustomize-controller"} {
		t.Run(manager, func(t *testing.T) {
			t.Parallel()
			d := reapplyAfterRoll(t, func(d *appsv1.Deployment) { serverSideApply(t, d, manager) })
			owners := map[string]string{}
			for _, mf := range d.ManagedFields {
				owners[mf.Manager] = mf.FieldsV1.String()
			}
			// The tool owns what its manifest sets (reroll.dev/auto among
			// it); reroll owns what it writes; neither owns the other's.
			for _, f := range []string{"reroll.dev/consumed", "reroll.dev/rollout", "reroll.dev/config-hash"} {
				if !strings.Contains(owners["reroll"], f) || strings.Contains(owners[manager], f) {
					t.Errorf("%s: owned by reroll: %v, by %s: %v", f, strings.Contains(owners["reroll"], f), manager, strings.Contains(owners[manager], f))
				}
			}
		})
	}
}

// clientSideApply applies d as `kubectl apply` (client-side) does: it keeps
// the applied manifest in the last-applied-configuration annotation and
// sends the three-way strategic merge patch of last-applied, manifest and
// live object (strategicpatch.CreateThreeWayMergePatch, kubectl's own
// computation), or creates the object the first time.
func clientSideApply(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ctx := context.Background()
	const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	manifest, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	withAnnotation := d.DeepCopy()
	withAnnotation.Annotations[lastApplied] = string(manifest)
	modified, err := json.Marshal(withAnnotation)
	if err != nil {
		t.Fatal(err)
	}
	live, err := testEnv.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := testEnv.client.AppsV1().Deployments(d.Namespace).Create(ctx, withAnnotation, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	current, err := json.Marshal(live)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := strategicpatch.NewPatchMetaFromStruct(&appsv1.Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch([]byte(live.Annotations[lastApplied]), modified, current, meta, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl apply's patch: %s", patch)
	if _, err := testEnv.client.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.StrategicMergePatchType, patch,
		metav1.PatchOptions{FieldManager: "kubectl-client-side-apply"}); err != nil {
		t.Fatal(err)
	}
}

// TestGitOpsClientSideApply shows what a client-side `kubectl apply` of the
// same manifest does: its three-way merge touches only the fields of its
// last-applied configuration, which never holds reroll's annotations, so
// they stay and nothing rolls (docs/gitops.md).
func TestGitOpsClientSideApply(t *testing.T) {
	t.Parallel()
	reapplyAfterRoll(t, func(d *appsv1.Deployment) { clientSideApply(t, d) })
}

// reapplyAfterRoll is the GitOps scenario: apply creates the manifest's
// Deployment, reroll adopts it and rolls it once for a change of its
// ConfigMap, then apply applies the same manifest again (the tool's next
// sync). It fails the test if that changed reroll's annotations or rolled
// anything more, and returns the Deployment as it then is.
func reapplyAfterRoll(t *testing.T, apply func(*appsv1.Deployment)) *appsv1.Deployment {
	t.Helper()
	ns := newNamespace(t)
	create(t, configMap(ns, "cfg", map[string]string{"k": "0"}))
	apply(gitopsManifest(ns))
	b := newBarrier(t, ns)
	startReroll(t, ns)
	waitAdopted(t, ns, "web")
	updateConfigMap(t, ns, "cfg", func(cm *corev1.ConfigMap) { cm.Data["k"] = "1" })
	waitReplicaSets(t, ns, "web", 2)
	b.wait()
	consumed, rollout, hash := rerollAnnotationsOf(getDeployment(t, ns, "web"))

	apply(gitopsManifest(ns))
	b.wait()
	d := getDeployment(t, ns, "web")
	c2, r2, h2 := rerollAnnotationsOf(d)
	if c2 != consumed || r2 != rollout || h2 != hash {
		t.Errorf("re-applying the manifest changed reroll's annotations: %q %q %q, were %q %q %q", c2, r2, h2, consumed, rollout, hash)
	}
	if n := replicaSets(t, ns, "web"); n != 2 {
		t.Errorf("re-applying the manifest made %d ReplicaSets, want 2 (no extra rollout)", n)
	}
	return d
}
