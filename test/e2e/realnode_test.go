//go:build e2e

package e2e

import (
	"context"
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

// A Deployment whose pods really run, on the real node: when its
// ConfigMap changes, reroll rolls it, and the new pod, Ready, logs the new
// value (read from kubelet through kube-apiserver) while the old one is
// gone.
func TestRealNodeRollRunsTheNewConfig(t *testing.T) {
	t.Parallel()
	node := requireRealNode(t)
	ns := newNamespace(t)
	create(t, configMap(ns, "app", map[string]string{"value": "first"}), testDeployment(ns, "app", auto(), onRealNode("app")))
	startReroll(t, ns)
	waitAdopted(t, ns, "app")
	waitRunningValue(t, ns, node, "first")
	updateConfigMap(t, ns, "app", func(cm *corev1.ConfigMap) { cm.Data["value"] = "second" })
	waitEvent(t, ns, "app", "Rolled")
	waitRunningValue(t, ns, node, "second")
}

// waitRunningValue waits until the namespace's pods are one Ready pod on
// node, and its log shows value.
func waitRunningValue(t *testing.T, ns, node, value string) {
	t.Helper()
	waitForUpTo(t, "one Ready pod on "+node+" logging "+value, 2*waitTimeout, func(ctx context.Context) (bool, error) {
		pods, err := testEnv.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 1 {
			return false, err
		}
		p := pods.Items[0]
		if p.Spec.NodeName != node || p.DeletionTimestamp != nil || !podReady(&p) {
			return false, nil
		}
		log, err := testEnv.client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		return strings.Contains(string(log), "env="+value+" "), err
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
