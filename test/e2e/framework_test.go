//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Annotations reroll reads and writes (its API, repeated here on purpose:
// the e2e suite tests the contract, not the package's constants).
const (
	annotationAuto       = "reroll.dev/auto"
	annotationConsumed   = "reroll.dev/consumed"
	annotationConfigHash = "reroll.dev/config-hash"
	annotationIgnore     = "reroll.dev/ignore"
)

// waitTimeout bounds every wait for the cluster or reroll to act.
const waitTimeout = 60 * time.Second

// rolloutTimeout bounds a wait for kube-controller-manager to judge a
// Deployment's rollout (its progress deadline, or its completion with a
// Pod on the kwok node). On two busy cores it can take over a minute, while
// it deletes the namespaces of earlier tests with hundreds of Deployments.
const rolloutTimeout = 3 * time.Minute

// lockedBuffer is a bytes.Buffer safe for a process writing while a test
// reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rerollProcess is one running reroll binary.
type rerollProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{}
	err    error
}

// startReroll starts the controller under test with a kubeconfig, scoped to
// namespace ns (its own namespace too), plus extra args. It is stopped, and
// its log printed if the test failed, at cleanup.
func startReroll(t *testing.T, ns string, extra ...string) *rerollProcess {
	t.Helper()
	args := append([]string{
		"--kubeconfig=" + testEnv.info.Kubeconfig,
		"--namespace=" + ns,
		"--controller-namespace=" + ns,
		"--workers=1",
		"--debounce=200ms",
		// The bake has tests of its own (bake_test.go); the others would
		// only wait for it.
		"--bake-time=0s",
		"--v=4",
	}, append(localServers(), extra...)...)
	return startRerollCommand(t, exec.Command(testEnv.controller, args...))
}

// localServers returns the flags that bind reroll's metrics and probe
// servers to free loopback ports, so parallel processes never collide.
func localServers() []string {
	return []string{"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0"}
}

// startRerollCommand starts a prepared reroll command (see startReroll).
func startRerollCommand(t *testing.T, cmd *exec.Cmd) *rerollProcess {
	t.Helper()
	p := &rerollProcess{t: t, cmd: cmd, log: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting reroll: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("reroll log (%s):\n%s", strings.Join(cmd.Args, " "), p.log.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process (and its group) to exit,
// killing it if it does not within 30s.
func (p *rerollProcess) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Errorf("reroll did not exit within 30s of SIGTERM")
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// countLog returns how many log lines contain every one of parts.
func (p *rerollProcess) countLog(parts ...string) int {
	n := 0
	for _, line := range strings.Split(p.log.String(), "\n") {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(line, part)
		}
		if all {
			n++
		}
	}
	return n
}

// waitLog waits until at least n log lines contain every one of parts.
func (p *rerollProcess) waitLog(n int, parts ...string) {
	p.t.Helper()
	waitFor(p.t, fmt.Sprintf("%d log lines with %q", n, parts), func(context.Context) (bool, error) {
		select {
		case <-p.exited:
			return false, fmt.Errorf("reroll exited: %v", p.err)
		default:
		}
		return p.countLog(parts...) >= n, nil
	})
}

// waitFor polls cond every 50ms until it holds, failing the test after
// waitTimeout.
func waitFor(t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	waitForUpTo(t, what, waitTimeout, cond)
}

// waitForUpTo polls cond every 50ms until it holds, failing the test after
// timeout.
func waitForUpTo(t *testing.T, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := strings.ToLower(strings.NewReplacer("_", "-", "/", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + hex.EncodeToString(suffix)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := testEnv.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, name)
		}
		_ = testEnv.client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// Namespaces get their default ServiceAccount from kube-controller-manager;
	// nothing here needs it, so there is nothing to wait for.
	return name
}

// dumpNamespace logs the objects of a failed test's namespace: workloads
// with reroll's annotations, ReplicaSets and Events.
func dumpNamespace(t *testing.T, ns string) {
	ctx := context.Background()
	c := testEnv.client
	var b strings.Builder
	if list, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, d := range list.Items {
			fmt.Fprintf(&b, "Deployment %s generation=%d consumed=%q template config-hash=%q\n", d.Name, d.Generation,
				d.Annotations[annotationConsumed], d.Spec.Template.Annotations[annotationConfigHash])
			fmt.Fprintf(&b, "  status observedGeneration=%d replicas=%d updated=%d available=%d\n", d.Status.ObservedGeneration,
				d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas)
			for _, c := range d.Status.Conditions {
				fmt.Fprintf(&b, "  condition %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.LastUpdateTime.Format(time.RFC3339))
			}
		}
	}
	if list, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, rs := range list.Items {
			fmt.Fprintf(&b, "ReplicaSet %s created=%s config-hash=%q\n", rs.Name, rs.CreationTimestamp.Format(time.RFC3339),
				rs.Spec.Template.Annotations[annotationConfigHash])
		}
	}
	if list, err := c.EventsV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range list.Items {
			fmt.Fprintf(&b, "Event %s %s %s/%s (%s, %d times): %s\n", e.Type, e.Reason, e.Regarding.Kind, e.Regarding.Name,
				e.EventTime.Format(time.RFC3339), seriesCount(e.Series), e.Note)
		}
	}
	t.Logf("objects in namespace %s:\n%s", ns, b.String())
}

// seriesCount returns how often an Event happened.
func seriesCount(s *eventsv1.EventSeries) int32 {
	if s == nil {
		return 1
	}
	return s.Count
}

// createNamespace creates a namespace unless it exists.
func createNamespace(name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := testEnv.client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// testDeployment is a Deployment whose single container consumes what
// mutate adds. It never becomes ready (there are no nodes) but
// kube-controller-manager still creates a ReplicaSet per template.
func testDeployment(ns, name string, annotations map[string]string, mutate func(*corev1.PodSpec)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
			},
		},
	}
	if mutate != nil {
		mutate(&d.Spec.Template.Spec)
	}
	return d
}

// envFrom makes the container consume every key of a ConfigMap.
func envFrom(configMap string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers[0].EnvFrom = append(s.Containers[0].EnvFrom, corev1.EnvFromSource{
			ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: configMap}}})
	}
}

// envKey makes the container consume one key of a ConfigMap.
func envKey(configMap, key string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Containers[0].Env = append(s.Containers[0].Env, corev1.EnvVar{Name: "V_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_")),
			ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: configMap}, Key: key}}})
	}
}

// secretVolume makes the pod mount every key of a Secret.
func secretVolume(secret string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: "s-" + secret, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: secret}}})
	}
}

// both applies several pod spec mutations.
func both(mutations ...func(*corev1.PodSpec)) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		for _, m := range mutations {
			m(s)
		}
	}
}

// auto returns the annotations of a Deployment opted in with auto.
func auto() map[string]string { return map[string]string{annotationAuto: "true"} }

// create creates objects, failing the test on error.
func create(t *testing.T, objs ...any) {
	t.Helper()
	ctx := context.Background()
	c := testEnv.client
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.ConfigMap:
			_, err = c.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = c.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.Deployment:
			_, err = c.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *batchv1.Job:
			_, err = c.BatchV1().Jobs(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("create: unsupported %T", o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// configMap returns a ConfigMap.
func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data}
}

// secret returns a Secret.
func secret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
}

// updateConfigMap reads a ConfigMap, applies mutate and writes it back,
// retrying on conflicts.
func updateConfigMap(t *testing.T, ns, name string, mutate func(*corev1.ConfigMap)) {
	t.Helper()
	waitFor(t, "update of ConfigMap "+name, func(ctx context.Context) (bool, error) {
		cm, err := testEnv.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		mutate(cm)
		_, err = testEnv.client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// updateSecret is updateConfigMap for Secrets.
func updateSecret(t *testing.T, ns, name string, mutate func(*corev1.Secret)) {
	t.Helper()
	waitFor(t, "update of Secret "+name, func(ctx context.Context) (bool, error) {
		s, err := testEnv.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		mutate(s)
		_, err = testEnv.client.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// replicaSets returns how many ReplicaSets a Deployment owns: one per pod
// template kube-controller-manager rolled out, so the number of rolls plus
// one when each roll was rolled out before the next. Two rolls in quick
// succession can make one ReplicaSet: it skips a template it never synced.
func replicaSets(t *testing.T, ns, deployment string) int {
	t.Helper()
	n, err := countReplicaSets(context.Background(), testEnv.client, ns, deployment)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// countReplicaSets counts the ReplicaSets owned by a Deployment.
func countReplicaSets(ctx context.Context, c kubernetes.Interface, ns, deployment string) (int, error) {
	owned, err := ownedReplicaSets(ctx, c, ns, deployment)
	return len(owned), err
}

// ownedReplicaSets lists the ReplicaSets owned by a Deployment.
func ownedReplicaSets(ctx context.Context, c kubernetes.Interface, ns, deployment string) ([]appsv1.ReplicaSet, error) {
	list, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var owned []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if slices.ContainsFunc(rs.OwnerReferences, func(o metav1.OwnerReference) bool {
			return o.Kind == "Deployment" && o.Name == deployment
		}) {
			owned = append(owned, rs)
		}
	}
	return owned, nil
}

// waitReplicaSets waits until a Deployment owns exactly n ReplicaSets.
func waitReplicaSets(t *testing.T, ns, deployment string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d ReplicaSets of %s", n, deployment), func(ctx context.Context) (bool, error) {
		got, err := countReplicaSets(ctx, testEnv.client, ns, deployment)
		return got == n, err
	})
}

// waitTemplateRolledOut waits until kube-controller-manager has a
// ReplicaSet for a Deployment's current pod template (reroll's hash).
func waitTemplateRolledOut(t *testing.T, ns, deployment string) {
	t.Helper()
	waitFor(t, "a ReplicaSet for the template of "+deployment, func(ctx context.Context) (bool, error) {
		d, err := testEnv.client.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		want := d.Spec.Template.Annotations[annotationConfigHash]
		owned, err := ownedReplicaSets(ctx, testEnv.client, ns, deployment)
		return slices.ContainsFunc(owned, func(rs appsv1.ReplicaSet) bool {
			return rs.Spec.Template.Annotations[annotationConfigHash] == want
		}), err
	})
}

// getDeployment reads a Deployment.
func getDeployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := testEnv.client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitAdopted waits until reroll has recorded a baseline on a Deployment and
// kube-controller-manager has created its first ReplicaSet, and returns the
// recorded annotation.
func waitAdopted(t *testing.T, ns, name string) string {
	t.Helper()
	var consumed string
	waitFor(t, "adoption of "+name, func(ctx context.Context) (bool, error) {
		d, err := testEnv.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		consumed = d.Annotations[annotationConsumed]
		return consumed != "", nil
	})
	waitReplicaSets(t, ns, name, 1)
	return consumed
}

// barrier proves reroll has processed every config event delivered before
// it: it changes a ConfigMap that only the barrier Deployment consumes and
// waits for that Deployment to roll. With one worker, the keys of consumed
// changes are synced in the order they became due, ahead of every other
// key, so every change enqueued earlier is done. Syncs queued for another
// cause (an adoption, a workload update, a resync) may still wait: wait for
// what they do (waitAdopted, a log line) instead.
type barrier struct {
	t      *testing.T
	ns     string
	rolled int
}

// newBarrier creates the barrier's ConfigMap and Deployment; call it before
// starting reroll, or wait for its adoption.
func newBarrier(t *testing.T, ns string) *barrier {
	t.Helper()
	create(t, configMap(ns, "barrier", map[string]string{"n": "0"}),
		testDeployment(ns, "barrier", auto(), envFrom("barrier")))
	return &barrier{t: t, ns: ns}
}

// wait runs the barrier once.
func (b *barrier) wait() {
	b.t.Helper()
	b.rolled++
	updateConfigMap(b.t, b.ns, "barrier", func(cm *corev1.ConfigMap) { cm.Data["n"] = fmt.Sprint(b.rolled) })
	waitReplicaSets(b.t, b.ns, "barrier", b.rolled+1)
}

// eventReasons returns the reasons of the Events regarding an object.
func eventReasons(t *testing.T, ns, name string) []string {
	t.Helper()
	list, err := testEnv.client.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

// waitEvent waits for an Event with reason regarding an object.
func waitEvent(t *testing.T, ns, name, reason string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("Event %s on %s", reason, name), func(ctx context.Context) (bool, error) {
		for _, r := range eventReasons(t, ns, name) {
			if r == reason {
				return true, nil
			}
		}
		return false, nil
	})
}
