package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/reroll/reroll/pkg/controller"
	"github.com/reroll/reroll/pkg/plan"
)

// update rewrites the golden files: go test ./cmd/kubectl-reroll -update.
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const ns = "shop"

// cluster returns a fake cluster: reroll's hash key; ConfigMap web-config
// and Secret api; Deployments web (reads LOG_LEVEL, and api in an init
// container), worker (mounts key greeting), plain (not opted in); each
// opted-in one adopted by reroll as it would be.
func cluster(t *testing.T) *fake.Clientset {
	t.Helper()
	key := bytes.Repeat([]byte{7}, plan.MinHashKeyBytes)
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "reroll-hash-key", Namespace: "reroll-system",
			Labels: map[string]string{"app.kubernetes.io/name": "reroll", "app.kubernetes.io/component": "hash-key"}}, Data: map[string][]byte{"key": key}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-config", Namespace: ns}, Data: map[string]string{"LOG_LEVEL": "info", "greeting": "hello"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns}, Data: map[string][]byte{"token": []byte("s3cr3t")}},
	}
	web := deploy("web", map[string]string{"reroll.dev/auto": "true"}, func(s *corev1.PodSpec) {
		s.Containers[0].Env = []corev1.EnvVar{{Name: "LOG_LEVEL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}, Key: "LOG_LEVEL"}}}}
		s.InitContainers = []corev1.Container{{Name: "migrate", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "api"}}}}}}
	})
	worker := deploy("worker", map[string]string{"reroll.dev/auto": "true"}, func(s *corev1.PodSpec) {
		s.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}, Items: []corev1.KeyToPath{{Key: "greeting", Path: "g"}}}}}}
	})
	plain := deploy("plain", nil, func(s *corev1.PodSpec) {
		s.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}}
	})
	hk, err := plan.NewHashKey(key)
	if err != nil {
		t.Fatal(err)
	}
	in := controller.NewInspector(controller.InspectSettings{HashKey: &hk})
	for _, o := range append(objs, web, worker, plain) {
		if err := in.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*appsv1.Deployment{web, worker} {
		e, _ := in.Explain("deployment", ns, d.Name)
		d.Annotations["reroll.dev/consumed"] = e.CurrentState
	}
	return fake.NewClientset(append(objs, web, worker, plain)...)
}

// deploy returns a Deployment of ns.
func deploy(name string, annotations map[string]string, mutate func(*corev1.PodSpec)) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}}}
	mutate(&d.Spec.Template.Spec)
	return d
}

// invoke runs the plugin against client with args and stdin, and returns
// its exit code and output.
func invoke(t *testing.T, client kubernetes.Interface, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	connect := func(o *options) (*rest.Config, kubernetes.Interface, string, error) {
		if o.allNamespaces {
			return nil, client, "", nil
		}
		if o.namespace != "" {
			return nil, client, o.namespace, nil
		}
		return nil, client, ns, nil
	}
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, connect)
	return code, out.String(), errOut.String()
}

// golden compares got with testdata/name.golden (or rewrites it with
// -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// newLogLevel is web-config with LOG_LEVEL changed, as `kubectl create
// configmap --dry-run=client -o yaml` prints it.
const newLogLevel = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  LOG_LEVEL: debug
  greeting: hello
`

func TestImpact(t *testing.T) {
	for _, format := range []string{"table", "json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			code, out, errOut := invoke(t, cluster(t), newLogLevel, "impact", "configmap/web-config", "-f", "-", "-o", format)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, "impact-"+format, out)
		})
	}
	// JSON says exactly who rolls, and never a value.
	_, out, _ := invoke(t, cluster(t), newLogLevel, "impact", "cm/web-config", "-f", "-", "-o", "json")
	var rows []controller.ImpactRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]string{}
	for _, r := range rows {
		verdicts[r.Name] = r.Verdict + "|" + strings.Join(r.Keys, ",") + "|" + r.Reason
	}
	want := map[string]string{"web": "WOULD ROLL|LOG_LEVEL|", "worker": "no roll||unconsumed keys only", "plain": "no roll||workload not opted in"}
	for n, w := range want {
		if verdicts[n] != w {
			t.Errorf("%s: %q, want %q", n, verdicts[n], w)
		}
	}
	if strings.Contains(out, "debug") || strings.Contains(out, "info") {
		t.Error("impact printed a value")
	}
	// The YAML says the same as the JSON.
	_, y, _ := invoke(t, cluster(t), newLogLevel, "impact", "cm/web-config", "-f", "-", "-o", "yaml")
	var fromYAML []controller.ImpactRow
	if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(y), 4096).Decode(&fromYAML); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromYAML, rows) {
		t.Errorf("YAML rows %+v, JSON rows %+v", fromYAML, rows)
	}
}

func TestImpactWithoutFile(t *testing.T) {
	code, out, errOut := invoke(t, cluster(t), "", "impact", "configmap/web-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "impact-consumers", out)
}

func TestStatus(t *testing.T) {
	for _, format := range []string{"table", "json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			code, out, errOut := invoke(t, cluster(t), "", "status", "-o", format)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, "status-"+format, out)
		})
	}
	// A changed Secret makes web "will roll"; KIND/NAME selects one.
	client := cluster(t)
	s, _ := client.CoreV1().Secrets(ns).Get(context.Background(), "api", metav1.GetOptions{})
	s.Data["token"] = []byte("rotated")
	if _, err := client.CoreV1().Secrets(ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, _ := invoke(t, client, "", "status", "deploy/web")
	if code != 0 || !strings.Contains(out, "will roll") || !strings.Contains(out, "Secret/api") || strings.Contains(out, "worker") {
		t.Errorf("status deploy/web after a change:\n%s", out)
	}

	// When reroll last rolled it, and why, from its Events.
	rolled := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web.1", Namespace: ns}, Reason: "Rolled",
		ReportingController: "reroll.dev/reroll", EventTime: metav1.NewMicroTime(time.Now().Add(-5 * time.Minute)),
		Regarding: corev1.ObjectReference{Kind: "Deployment", Namespace: ns, Name: "web"},
		Note:      "Rolled: consumed content changed in ConfigMap/web-config (keys LOG_LEVEL)"}
	if _, err := client.EventsV1().Events(ns).Create(context.Background(), rolled, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, out, _ = invoke(t, client, "", "status", "deploy/web")
	if !strings.Contains(out, "5m ago: consumed content changed in ConfigMap/web-config (keys LOG_LEVEL)") {
		t.Errorf("status does not say when and why web last rolled:\n%s", out)
	}
}

// Without read access to reroll's key, states are unknown, with the
// missing permission named; nothing is guessed and nothing crashes.
func TestStatusWithoutHashKeyAccess(t *testing.T) {
	client := cluster(t)
	client.PrependReactor("get", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "reroll-system" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "reroll-hash-key", errors.New("RBAC"))
		}
		return false, nil, nil
	})
	code, out, errOut := invoke(t, client, "", "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "status-no-key", out)
	if !strings.Contains(out, "missing permission: get secrets reroll-hash-key in namespace reroll-system") {
		t.Errorf("the missing permission is not named:\n%s", out)
	}
}

func TestExplain(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		code, out, errOut := invoke(t, cluster(t), "", "explain", "deployment/web", "-o", format)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		golden(t, "explain-"+format, out)
	}
	code, out, errOut := invoke(t, cluster(t), "", "explain", "deployment/web")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// Ages depend on the clock: the fake cluster has no Events, so none.
	golden(t, "explain", out)
	if !strings.Contains(out, "initContainer migrate envFrom") {
		t.Errorf("the init container's reference is not named:\n%s", out)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 0, "Commands:"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"status", "-o", "wide"}, 2, "-o must be table, json or yaml"},
		{[]string{"impact", "deployment/web"}, 1, "is not configmap/NAME or secret/NAME"},
		{[]string{"impact", "cm/web-config", "-A"}, 1, "impact works in one namespace"},
		{[]string{"explain", "deployment/nope"}, 1, "deployment/nope not found in namespace shop"},
		{[]string{"status", "--help"}, 0, ""},
	}
	for _, tt := range tests {
		code, out, errOut := invoke(t, cluster(t), "", tt.args...)
		if code != tt.code || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%q: exit %d, output %q; want exit %d with %q", tt.args, code, out+errOut, tt.code, tt.want)
		}
	}
}

// pause, resume and release write exactly their annotation, say so, and
// with --dry-run write nothing.
func TestAnnotateCommands(t *testing.T) {
	ctx := context.Background()
	client := cluster(t)
	code, out, errOut := invoke(t, client, "", "release", "configmap/web-config", "--dry-run")
	if code != 0 || !strings.HasPrefix(out, "configmap/web-config: would have set reroll.dev/release=") {
		t.Fatalf("dry run: %d %q %q", code, out, errOut)
	}
	if cm, _ := client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{}); cm.Annotations["reroll.dev/release"] != "" {
		t.Fatal("a dry run wrote")
	}
	if code, out, errOut = invoke(t, client, "", "release", "configmap/web-config"); code != 0 {
		t.Fatalf("release: %d %q", code, errOut)
	}
	key, _ := plan.NewHashKey(bytes.Repeat([]byte{7}, plan.MinHashKeyBytes))
	live, _ := client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	cached, _ := controller.TransformForCache(live.DeepCopy())
	_, want, _ := strings.Cut(string(plan.CalculateChangeID(key, plan.ConfigRef{Type: plan.TypeConfigMap, Name: "web-config"}, plan.CachedDigests(cached))), ":")
	if live.Annotations["reroll.dev/release"] != want || !strings.Contains(out, want) {
		t.Errorf("released %q (said %q), want the current change %q", live.Annotations["reroll.dev/release"], out, want)
	}
	if code, _, errOut = invoke(t, client, "", "pause", "deploy/web"); code != 0 {
		t.Fatalf("pause: %q", errOut)
	}
	if d, _ := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); d.Annotations["reroll.dev/paused"] != "true" {
		t.Errorf("pause wrote %v", d.Annotations)
	}
	if code, out, _ = invoke(t, client, "", "resume", "deployment/web"); code != 0 || out != "deployment/web: removed reroll.dev/paused\n" {
		t.Errorf("resume: %d %q", code, out)
	}
	if d, _ := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); d.Annotations["reroll.dev/paused"] != "" {
		t.Errorf("resume left %v", d.Annotations)
	}
	if code, _, errOut = invoke(t, client, "", "release", "deployment/web"); code != 1 || !strings.Contains(errOut, "release takes a configmap or a secret") {
		t.Errorf("release of a Deployment: %d %q", code, errOut)
	}
}

// The plugin finds reroll's namespace by the labels of its hash key, says
// in one line when it finds none or several, and --controller-namespace
// overrides it.
func TestFindController(t *testing.T) {
	ctx := context.Background()
	labels := map[string]string{"app.kubernetes.io/name": "reroll", "app.kubernetes.io/component": "hash-key"}
	o := &options{hashKeySecret: "reroll-hash-key"}
	secret := func(ns string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "reroll-hash-key", Namespace: ns, Labels: labels}}
	}
	if ns, err := findController(ctx, o, fake.NewClientset(secret("ops"))); err != nil || ns != "ops" {
		t.Errorf("one install: %q, %v", ns, err)
	}
	if _, err := findController(ctx, o, fake.NewClientset()); err == nil || !strings.Contains(err.Error(), "found no reroll") || !strings.Contains(err.Error(), "--controller-namespace=NAMESPACE") {
		t.Errorf("none: %v", err)
	}
	if _, err := findController(ctx, o, fake.NewClientset(secret("b"), secret("a"))); err == nil || !strings.Contains(err.Error(), "found reroll in namespaces a, b; pass --controller-namespace") {
		t.Errorf("two: %v", err)
	}
	forbidden := fake.NewClientset()
	forbidden.PrependReactor("list", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", errors.New("RBAC"))
	})
	if ns, err := findController(ctx, o, forbidden); err != nil || ns != "reroll-system" {
		t.Errorf("cannot list: %q, %v; want the default namespace", ns, err)
	}
}

// Each command's help follows kubectl's conventions: long flags with two
// dashes, short aliases beside them, grouped (golden files).
func TestCommandHelp(t *testing.T) {
	for _, cmd := range []string{"impact", "status", "explain", "release"} {
		code, out, errOut := invoke(t, fake.NewClientset(), "", cmd, "--help")
		if code != 0 || errOut != "" {
			t.Fatalf("%s --help: exit %d, %q", cmd, code, errOut)
		}
		golden(t, "help-"+cmd, out)
		if strings.Contains(out, "\n  -n string") || !strings.Contains(out, "-A, --all-namespaces") {
			t.Errorf("%s --help does not pair short and long flags:\n%s", cmd, out)
		}
	}
	code, _, errOut := invoke(t, fake.NewClientset(), "", "status", "--bogus")
	if code != 2 || !strings.Contains(errOut, "See 'kubectl reroll status --help'.") {
		t.Errorf("a bad flag: exit %d, %q", code, errOut)
	}
}

// Completion answers kubectl's protocol: commands, kinds, then the names of
// a kind's objects in the namespace, and ":4" (no file completion) last.
func TestCompletion(t *testing.T) {
	client := cluster(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"st"}, "status\n:4\n"},
		{[]string{"impact", ""}, "configmap/\nsecret/\n:4\n"},
		{[]string{"impact", "configmap/w"}, "configmap/web-config\n:4\n"},
		{[]string{"status", "deployment/"}, "deployment/plain\ndeployment/web\ndeployment/worker\n:4\n"},
		{[]string{"status", "-n", "other", "deployment/"}, ":4\n"},
		{[]string{"status", "--out"}, ":4\n"},
	} {
		code, out, _ := invoke(t, client, "", append([]string{"__complete"}, tt.args...)...)
		if code != 0 || out != tt.want {
			t.Errorf("%q: %d %q, want %q", tt.args, code, out, tt.want)
		}
	}
}

// publish annotates reroll's hash key Secret of client with the decision
// flags' values, as reroll publishes them.
func publish(t *testing.T, client *fake.Clientset, values map[string]string) {
	t.Helper()
	s, err := client.CoreV1().Secrets("reroll-system").Get(context.Background(), "reroll-hash-key", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Annotations = map[string]string{controller.AnnotationSettings: controller.PublishedDecisions(values)}
	if _, err := client.CoreV1().Secrets("reroll-system").Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// statusOf returns the state of each workload of status -o json.
func statusOf(t *testing.T, out string) map[string]string {
	t.Helper()
	var rows []statusRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	states := map[string]string{}
	for _, r := range rows {
		states[r.Name] = r.State
	}
	return states
}

// The plugin decides with the settings reroll published, with no flag
// repeated; a flag given to it overrides one, and it says so; without
// published settings it says so in one line.
func TestStatusDecidesWithPublishedSettings(t *testing.T) {
	client := cluster(t)
	// Reroll runs with --auto-all: plain, which has no annotation, is opted
	// in, and not adopted yet.
	publish(t, client, map[string]string{"auto-all": "true", "kinds": "deployments"})
	code, out, errOut := invoke(t, client, "", "status", "-o", "json")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if got := statusOf(t, out)["plain"]; got != controller.StateNotAdopted {
		t.Errorf("plain under reroll's --auto-all: %q, want %q", got, controller.StateNotAdopted)
	}
	// An override: the plugin says which, and what reroll has.
	code, out, errOut = invoke(t, client, "", "status", "-o", "json", "--auto-all=false")
	if code != 0 || errOut != "kubectl reroll: deciding with reroll's settings, except --auto-all=false (reroll: true)\n" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if _, listed := statusOf(t, out)["plain"]; listed {
		t.Error("plain is listed without --auto-all")
	}
	// An older reroll publishes nothing: one line, and the defaults.
	code, _, errOut = invoke(t, cluster(t), "", "status")
	if code != 0 || errOut != "kubectl reroll: reroll in namespace reroll-system publishes no settings on Secret reroll-hash-key (an older reroll?); deciding with the defaults\n" {
		t.Errorf("without settings: exit %d, stderr %q", code, errOut)
	}
	// A newer format: one line too.
	client = cluster(t)
	s, _ := client.CoreV1().Secrets("reroll-system").Get(context.Background(), "reroll-hash-key", metav1.GetOptions{})
	s.Annotations = map[string]string{controller.AnnotationSettings: `{"format":2,"flags":{}}`}
	_, _ = client.CoreV1().Secrets("reroll-system").Update(context.Background(), s, metav1.UpdateOptions{})
	if _, _, errOut = invoke(t, client, "", "status"); !strings.Contains(errOut, "has format 2, and this kubectl-reroll reads format 1: upgrade it; deciding with the defaults") {
		t.Errorf("newer format: stderr %q", errOut)
	}
	// A bad override is a usage error, before any request.
	if code, _, errOut = invoke(t, client, "", "status", "--waves=1,10%"); code != 2 || !strings.Contains(errOut, "--waves:") {
		t.Errorf("bad override: exit %d, stderr %q", code, errOut)
	}
}
