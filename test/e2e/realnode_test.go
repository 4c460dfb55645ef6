//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// echoconfigImage is the test app the real node has imported: it logs
// APP_VALUE and serves /ready on :8080.
const echoconfigImage = "reroll.local/echoconfig:1"

// onRealNode makes a pod select and tolerate the real node (its label and
// taint are both reroll.dev/node=real) and run echoconfig with APP_VALUE
// from the ConfigMap's key "value", Ready once it serves.
func onRealNode(configMap string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.NodeSelector = map[string]string{"reroll.dev/node": "real"}
		s.Tolerations = []corev1.Toleration{{Key: "reroll.dev/node", Value: "real", Effect: corev1.TaintEffectNoSchedule}}
		s.TerminationGracePeriodSeconds = ptr.To[int64](1)
		c := &s.Containers[0]
		c.Image = echoconfigImage
		c.Env = []corev1.EnvVar{{Name: "APP_VALUE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: configMap}, Key: "value"}}}}
		c.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
			HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}}}
	}
}

// A Deployment of three replicas whose pods really run, on the real node,
// reading the ConfigMap's key from env and from a mounted volume: when the
// ConfigMap changes, reroll rolls it once, every replica of the new
// ReplicaSet logs the new value from both (read from kubelet through
// kube-apiserver), and none of the old pods survives.
func TestRealNodeRollRunsTheNewConfig(t *testing.T) {
	t.Parallel()
	node := requireRealNode(t)
	ns := newNamespace(t)
	d := testDeployment(ns, "app", auto(), both(onRealNode("app"), func(s *corev1.PodSpec) {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Items: []corev1.KeyToPath{{Key: "value", Path: "value"}}}}})
		s.Containers[0].VolumeMounts = append(s.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "config", MountPath: "/config"})
	}))
	d.Spec.Replicas = ptr.To[int32](3)
	create(t, configMap(ns, "app", map[string]string{"value": "first"}), d)
	startReroll(t, ns)
	waitAdopted(t, ns, "app")
	waitRunningValue(t, ns, node, 3, "first")
	updateConfigMap(t, ns, "app", func(cm *corev1.ConfigMap) { cm.Data["value"] = "second" })
	waitEvent(t, ns, "app", "Rolled")
	waitRunningValue(t, ns, node, 3, "second")
	if n := replicaSets(t, ns, "app"); n != 2 {
		t.Errorf("%d ReplicaSets, want 2: one roll", n)
	}
}

// waitRunningValue waits until the namespace's pods are n Ready pods on
// node, all of the Deployment's newest ReplicaSet, none of an older one
// left, each logging value from env and from its file.
func waitRunningValue(t *testing.T, ns, node string, n int, value string) {
	t.Helper()
	waitForUpTo(t, fmt.Sprintf("%d Ready pods on %s logging %s", n, node, value), 2*waitTimeout, func(ctx context.Context) (bool, error) {
		pods, err := testEnv.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != n {
			return false, err
		}
		hash := pods.Items[0].Labels["pod-template-hash"]
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Spec.NodeName != node || p.DeletionTimestamp != nil || !podReady(p) || p.Labels["pod-template-hash"] != hash {
				return false, nil
			}
			log, err := testEnv.client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			if err != nil || !strings.Contains(string(log), "env="+value+" file="+value) {
				return false, err
			}
		}
		return true, nil
	})
}

// podReady reports whether the pod's Ready condition is true.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
