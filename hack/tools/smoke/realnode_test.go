package smoke

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"
)

// The real node as localcluster registers it.
const (
	realNodeName   = "real-node-0"
	realNodeLabel  = "reroll.dev/node"
	realNodeValue  = "real"
	echoconfigRef  = "reroll.local/echoconfig:1"
	unavailableTag = "localcluster: real node unavailable: "
)

// realNodeImages returns $REROLL_IMAGES_DIR, the image archives the real
// node imports; the tests that need the node fail without it.
func realNodeImages(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("REROLL_IMAGES_DIR")
	if dir == "" {
		t.Fatal("REROLL_IMAGES_DIR is not set: the real node needs the image archives (pause.tar, echoconfig.tar) of hack/tools/cmd/images")
	}
	return dir
}

// requireKubelet fails the test unless kubelet was built into binDir.
func requireKubelet(t *testing.T, binDir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(binDir, "kubelet")); err != nil {
		t.Fatalf("kubelet not in REROLL_BIN_DIR (build with WITH_NODES=1 hack/build-control-plane.sh): %v", err)
	}
}

// buildProbe builds ./inclusterprobe statically into a dir that a pod
// can mount and whose files any user can run.
func buildProbe(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "probe")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// -trimpath like the control plane's build, so client-go comes from
	// the same build cache.
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir, "./inclusterprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building inclusterprobe: %v\n%s", err, out)
	}
	return dir
}

// onRealNode makes spec select and tolerate the real node.
func onRealNode(spec corev1.PodSpec) corev1.PodSpec {
	spec.NodeSelector = map[string]string{realNodeLabel: realNodeValue}
	spec.Tolerations = []corev1.Toleration{{Key: realNodeLabel, Value: realNodeValue, Effect: corev1.TaintEffectNoSchedule}}
	return spec
}

// TestRealNode runs a cluster with kwok's node and a real node, and checks
// that pods really run there: a pod with env from a ConfigMap and a
// ConfigMap volume logs both values (read through kube-apiserver, so
// kubelet's API works); from a pod, rest.InClusterConfig reaches
// kube-apiserver through the "kubernetes" Service's IP, also in a
// process exec'd into it; a container that exits 1 goes into
// CrashLoopBackOff; a pod that asks for no node lands on kwok's. After
// teardown, nothing of the host it could change has changed.
func TestRealNode(t *testing.T) {
	bin, binDir := localclusterBin(t)
	requireKubelet(t, binDir)
	images := realNodeImages(t)
	probeDir := buildProbe(t)

	before := hostState(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	began := time.Now()
	lc, done, out := startLocalcluster(t, bin, "--bin-dir="+binDir, "--state-dir="+stateDir,
		"--with-nodes", "--real-node", "--images="+images)
	info := waitForClusterInfo(t, filepath.Join(stateDir, "cluster.json"), done, out)
	if info.RealNodeError != "" {
		t.Fatalf("%s%s", unavailableTag, info.RealNodeError)
	}
	if info.RealNode != realNodeName {
		t.Fatalf("cluster.json realNode %q, want %q", info.RealNode, realNodeName)
	}
	t.Logf("cluster with a real node ready in %.1fs", time.Since(began).Seconds())

	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := createRealNodePods(t, ctx, cs, probeDir)

	t.Run("configmap env and volume", func(t *testing.T) {
		waitPod(t, ctx, cs, ns, "echo", func(p *corev1.Pod) bool { return podReady(p) && p.Spec.NodeName == realNodeName })
		eventually(t, 30*time.Second, "echoconfig's log to show the ConfigMap's value twice", func() (bool, error) {
			log, err := podLog(ctx, cs, ns, "echo")
			return strings.Count(log, "from-the-configmap") >= 2, err
		})
	})
	t.Run("in-cluster config", func(t *testing.T) {
		waitPod(t, ctx, cs, ns, "probe", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		want := "inclusterprobe: ok host=https://10.0.0.1:443 version=" + wantVersion + " user=system:serviceaccount:" + ns + ":default"
		eventually(t, 30*time.Second, "the probe's log line", func() (bool, error) {
			log, err := podLog(ctx, cs, ns, "probe")
			return strings.Contains(log, want), err
		})
		stdout := execInPod(t, ctx, cfg, cs, ns, "probe", "/probe/inclusterprobe")
		if !strings.Contains(stdout, want) {
			t.Errorf("exec of the probe printed %q, want %q", stdout, want)
		}
	})
	t.Run("crash loop", func(t *testing.T) {
		waitPod(t, ctx, cs, ns, "crash", func(p *corev1.Pod) bool {
			for _, s := range p.Status.ContainerStatuses {
				if s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" {
					return true
				}
			}
			return false
		})
	})
	t.Run("other pods go to kwok", func(t *testing.T) {
		waitPod(t, ctx, cs, ns, "elsewhere", func(p *corev1.Pod) bool { return p.Spec.NodeName == "kwok-node-0" })
	})

	stopLocalcluster(t, lc, done, out, 60*time.Second, info.PIDs)
	if diff := diffStates(before, hostState(t), realNodeID(stateDir)); len(diff) > 0 {
		t.Errorf("the host changed during the run:\n%s", strings.Join(diff, "\n"))
	}
}

// createRealNodePods creates a namespace and in it the pods TestRealNode
// checks, and returns the namespace.
func createRealNodePods(t *testing.T, ctx context.Context, cs kubernetes.Interface, probeDir string) string {
	t.Helper()
	ns := "realnode"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Pods are refused until the ServiceAccount controller made "default".
	eventually(t, 30*time.Second, "ServiceAccount default", func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Data:       map[string]string{"value": "from-the-configmap"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	echo := corev1.Container{
		Name: "app", Image: echoconfigRef,
		Env: []corev1.EnvVar{{Name: "APP_VALUE", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "value"},
		}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/config"}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/ready", Port: intstr.FromInt32(8080),
		}}, PeriodSeconds: 1},
	}
	configVolume := corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}},
	}}
	crash := corev1.Container{Name: "app", Image: echoconfigRef, Env: []corev1.EnvVar{
		{Name: "APP_VALUE", Value: "crash"}, {Name: "APP_CRASH_AFTER", Value: "0s"},
	}}
	probe := corev1.Container{
		Name: "probe", Image: echoconfigRef, // for its root file system only
		Command:      []string{"/probe/inclusterprobe", "--wait"},
		VolumeMounts: []corev1.VolumeMount{{Name: "probe", MountPath: "/probe", ReadOnly: true}},
	}
	probeVolume := corev1.Volume{Name: "probe", VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: probeDir},
	}}
	for name, spec := range map[string]corev1.PodSpec{
		"echo":      onRealNode(corev1.PodSpec{Containers: []corev1.Container{echo}, Volumes: []corev1.Volume{configVolume}}),
		"probe":     onRealNode(corev1.PodSpec{Containers: []corev1.Container{probe}, Volumes: []corev1.Volume{probeVolume}}),
		"crash":     onRealNode(corev1.PodSpec{Containers: []corev1.Container{crash}}),
		"elsewhere": {Containers: []corev1.Container{{Name: "app", Image: echoconfigRef}}},
	} {
		spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// waitPod waits up to 2 minutes for the pod to satisfy ok.
func waitPod(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, name string, ok func(*corev1.Pod) bool) {
	t.Helper()
	var last *corev1.Pod
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && ok(p) {
			return
		}
		if err == nil {
			last = p
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("pod %s/%s: timed out; node %q, phase %s, status %+v", ns, name, last.Spec.NodeName, last.Status.Phase, last.Status.ContainerStatuses)
	}
	t.Fatalf("pod %s/%s: timed out", ns, name)
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

// podLog returns the pod's log, which kube-apiserver reads from kubelet.
func podLog(ctx context.Context, cs kubernetes.Interface, ns, name string) (string, error) {
	data, err := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	return string(data), err
}

// execInPod runs command in the pod's first container through
// kube-apiserver and kubelet, and returns its stdout.
func execInPod(t *testing.T, ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, ns, name string, command ...string) string {
	t.Helper()
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	exec, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatalf("exec %v in %s/%s: %v (stdout %q, stderr %q)", command, ns, name, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestRealNodeUnavailable starts a cluster asking for a real node on a
// host where it cannot start (here: no kubelet), and checks that it says
// why in exactly one line and in cluster.json, and goes on without it, or
// with --kwok-fallback on kwok's fake node.
func TestRealNodeUnavailable(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("kwok fallback %v", fallback), func(t *testing.T) { checkRealNodeUnavailable(t, fallback) })
	}
}

// checkRealNodeUnavailable starts localcluster with --real-node and no
// kubelet: one line says why, cluster.json too, the control plane runs,
// and with --kwok-fallback (make run) kwok's fake node is there instead,
// said in the same line.
func checkRealNodeUnavailable(t *testing.T, fallback bool) {

	bin, binDir := localclusterBin(t)
	noKubelet := t.TempDir()
	entries, err := os.ReadDir(binDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "kubelet" {
			if err := os.Symlink(filepath.Join(binDir, e.Name()), filepath.Join(noKubelet, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(noKubelet, "kube-scheduler")); err != nil {
		t.Skipf("kube-scheduler not in REROLL_BIN_DIR (build with WITH_NODES=1 hack/build-control-plane.sh): %v", err)
	}
	stateDir := filepath.Join(t.TempDir(), "state")
	args := []string{"--bin-dir=" + noKubelet, "--state-dir=" + stateDir, "--real-node", "--images=" + t.TempDir()}
	if fallback {
		args = append(args, "--kwok-fallback")
	}
	lc, done, out := startLocalcluster(t, bin, args...)
	info := waitForClusterInfo(t, filepath.Join(stateDir, "cluster.json"), done, out)
	if info.RealNode != "" || !strings.HasPrefix(info.RealNodeError, "kubelet not in ") {
		t.Errorf("cluster.json realNode %q, realNodeError %q; want none and why", info.RealNode, info.RealNodeError)
	}
	var lines []string
	for l := range strings.Lines(out.String()) {
		if strings.Contains(l, "real node") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	want := unavailableTag + info.RealNodeError
	if fallback {
		want += "; falling back to kwok's fake node: pods are scheduled and Running, but no container runs"
	}
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("lines about the real node %q, want exactly [%q]", lines, want)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	wantNodes := 0
	if fallback {
		wantNodes = 1 // kwok's
	}
	if err != nil || len(nodes.Items) != wantNodes {
		t.Errorf("nodes %v (%v), want %d", nodes, err, wantNodes)
	}
	stopLocalcluster(t, lc, done, out, 30*time.Second, info.PIDs)
}
