package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestParseMetrics checks the exposition parser on the shapes reroll's
// /metrics and kube-apiserver's use: comments, labels with escapes, no
// labels, and a timestamp.
func TestParseMetrics(t *testing.T) {
	text := `# HELP workqueue_depth Current depth of workqueue.
# TYPE workqueue_depth gauge
workqueue_depth{name="reroll"} 3
workqueue_depth{name="other"} 5
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="PATCH"} 10
rest_client_requests_total{code="409",host="127.0.0.1:6443",method="PATCH"} 2
rest_client_requests_total{code="201",host="127.0.0.1:6443",method="POST"} 7
odd{path="a\"b\\c",x=""} 1.5 1700000000000
process_cpu_seconds_total 2.25
`
	m, err := parseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"workqueue_depth", []string{"name", "reroll"}, 3},
		{"workqueue_depth", nil, 8},
		{"rest_client_requests_total", []string{"method", "PATCH"}, 12},
		{"rest_client_requests_total", []string{"method", "PATCH", "code", "409"}, 2},
		{"odd", []string{"path", `a"b\c`, "x", ""}, 1.5},
		{"process_cpu_seconds_total", nil, 2.25},
		{"missing", nil, 0},
	} {
		if got := m.sum(tc.name, tc.match...); got != tc.want {
			t.Errorf("sum(%s, %v) = %v, want %v", tc.name, tc.match, got, tc.want)
		}
	}
	if got, want := m.byLabel("rest_client_requests_total", "method"), map[string]float64{"PATCH": 12, "POST": 7}; !reflect.DeepEqual(got, want) {
		t.Errorf("byLabel = %v, want %v", got, want)
	}
	if _, err := parseMetrics(`broken{name="x} 1`); err == nil {
		t.Error("unterminated label value: want an error")
	}
}

// TestPercentile checks the nearest-rank percentile.
func TestPercentile(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}} {
		if got := percentile(values, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

// TestRollDiff checks how rolls are counted between two snapshots.
func TestRollDiff(t *testing.T) {
	before := map[string]int{"a": 1, "b": 0, "c": 2}
	after := map[string]int{"a": 2, "b": 0, "c": 4, "d": 1}
	rolled, multi, keys := rollDiff(before, after)
	if rolled != 3 || multi != 1 || !reflect.DeepEqual(keys, []string{"a", "c", "d"}) {
		t.Errorf("rollDiff = %d, %d, %v; want 3, 1, [a c d]", rolled, multi, keys)
	}
}

// TestSplitSize checks that value sizes add up to the object's size.
func TestSplitSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ size, parts int }{{100, 1}, {100, 4}, {3, 4}, {41000, 3}} {
		sizes := splitSize(rng, tc.size, tc.parts)
		sum := 0
		for _, s := range sizes {
			if s < 1 {
				t.Errorf("splitSize(%d, %d) = %v: a part below 1", tc.size, tc.parts, sizes)
			}
			sum += s
		}
		if sum != tc.size {
			t.Errorf("splitSize(%d, %d) = %v, sums to %d", tc.size, tc.parts, sizes, sum)
		}
	}
}

// TestFormatNumber checks the table's number format.
func TestFormatNumber(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1000: "1000", 8.74: "8.74", 0.0199: "0.0199", 1007.04: "1007.0", 78.19: "78.2"} {
		if got := formatNumber(v); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestScaleLayout checks the scale scenario's layout at several scales:
// every Deployment consumes objects that exist in its own namespace, no two
// objects share a name, exactly the shared consumers consume "shared", and
// every object holds 1 KiB of value data.
func TestScaleLayout(t *testing.T) {
	for _, scale := range []float64{1, 0.05, 0.0001} {
		l := newScaleLayout(&env{opts: options{scale: scale}})
		configMaps := map[string]bool{key(scaleSharedNamespace, "shared"): true, key(scaleEarlyNamespace, "early"): true}
		for i := range l.configMaps {
			cm := l.configMap(i)
			size := 0
			for _, v := range cm.Data {
				size += len(v)
			}
			if size != scaleObjectBytes || configMaps[key(cm.Namespace, cm.Name)] {
				t.Fatalf("scale %v: ConfigMap %d: %s/%s, %d bytes, or a duplicate", scale, i, cm.Namespace, cm.Name, size)
			}
			configMaps[key(cm.Namespace, cm.Name)] = true
		}
		secrets := map[string]bool{}
		for i := range l.secrets {
			s := l.secret(i)
			size := 0
			for _, v := range s.Data {
				size += len(v)
			}
			if size != scaleObjectBytes || secrets[key(s.Namespace, s.Name)] {
				t.Fatalf("scale %v: Secret %d: %s/%s, %d bytes, or a duplicate", scale, i, s.Namespace, s.Name, size)
			}
			secrets[key(s.Namespace, s.Name)] = true
		}
		consumers := map[string][]string{}
		seen := map[string]bool{}
		for j := range l.total() {
			d := l.deployment(j, "scale")
			k := key(d.Namespace, d.Name)
			pod := d.Spec.Template.Spec
			cm := key(d.Namespace, pod.Containers[0].EnvFrom[0].ConfigMapRef.Name)
			if seen[k] || !configMaps[cm] {
				t.Fatalf("scale %v: Deployment %d (%s): a duplicate, or ConfigMap %s missing", scale, j, k, cm)
			}
			if len(pod.Volumes) > 0 && !secrets[key(d.Namespace, pod.Volumes[0].Secret.SecretName)] {
				t.Fatalf("scale %v: Deployment %d (%s): Secret %s missing", scale, j, k, pod.Volumes[0].Secret.SecretName)
			}
			seen[k] = true
			consumers[cm] = append(consumers[cm], k)
		}
		if got := consumers[key(scaleSharedNamespace, "shared")]; len(got) != l.shared || !reflect.DeepEqual(got, l.sharedKeys()) {
			t.Errorf("scale %v: consumers of shared = %d, want %d: %v", scale, len(got), l.shared, l.sharedKeys())
		}
		if got := consumers[key(scaleEarlyNamespace, "early")]; !reflect.DeepEqual(got, earlyKeys()) {
			t.Errorf("scale %v: consumers of early = %v, want %v", scale, got, earlyKeys())
		}
		if len(consumers) != l.own()+2 {
			t.Errorf("scale %v: %d ConfigMaps consumed, want %d", scale, len(consumers), l.own()+2)
		}
	}
	if l := newScaleLayout(&env{opts: options{scale: 1}}); l != (scaleLayout{namespaces: 2000, configMaps: 25000, secrets: 25000, deployments: 10000, shared: 1000}) {
		t.Errorf("scale 1: layout %+v", l)
	}
}

// TestProviderClassPods checks the CSI variants' names and objects: each
// Pod name starts with its Deployment's name and a dash (how reroll maps a
// status to its workload), is the same for the same Pod and differs between
// Pods, and a status reports its Pod, its class and the version given,
// under the driver's name for it.
func TestProviderClassPods(t *testing.T) {
	seen := map[string]bool{}
	for _, deploy := range []string{"app-0000", "app-0001", "app-0999"} {
		for n := range csiReplicas {
			pod := csiPodName(deploy, n)
			if !strings.HasPrefix(pod, deploy+"-") || !strings.HasSuffix(pod, "-"+strconv.Itoa(n)) || seen[pod] || pod != csiPodName(deploy, n) {
				t.Errorf("csiPodName(%q, %d) = %q: not <deploy>-<hash>-<n>, or not unique or stable", deploy, n, pod)
			}
			seen[pod] = true
		}
	}
	s := providerClassPodStatus("ns", "app-0000-abc-1", "vault", "v2")
	if s.GetName() != "app-0000-abc-1-ns-vault" || s.GetNamespace() != "ns" || s.GetKind() != "SecretProviderClassPodStatus" || s.GetAPIVersion() != "secrets-store.csi.x-k8s.io/v1" {
		t.Errorf("status %s/%s, %s %s", s.GetNamespace(), s.GetName(), s.GetAPIVersion(), s.GetKind())
	}
	pod, _, _ := unstructured.NestedString(s.Object, "status", "podName")
	class, _, _ := unstructured.NestedString(s.Object, "status", "secretProviderClassName")
	objects, _, _ := unstructured.NestedSlice(s.Object, "status", "objects")
	if pod != "app-0000-abc-1" || class != "vault" || !reflect.DeepEqual(objects, []any{map[string]any{"id": csiObjectID, "version": "v2"}}) {
		t.Errorf("status reports pod %q, class %q, objects %v", pod, class, objects)
	}
}

// TestMemoryCSIVariant checks what the CSI variants change: the Deployment
// gets csiReplicas replicas and a CSI volume of csiClass, mounted, and
// keeps what the memory scenario consumes; only the watching variant adds
// --secrets-store-csi; and keysIn finds every Deployment of a namespace.
func TestMemoryCSIVariant(t *testing.T) {
	d := newDeployment("ns", "app-0000", "memory-csi", true, consumption{envFromConfigMap: "cm", volumeSecret: "s"})
	csiVariant(true).deployment(d)
	spec := d.Spec.Template.Spec
	if *d.Spec.Replicas != csiReplicas || len(spec.Volumes) != 2 || spec.Volumes[0].Secret == nil || len(spec.Containers[0].EnvFrom) != 1 {
		t.Fatalf("Deployment: %d replicas, volumes %v", *d.Spec.Replicas, spec.Volumes)
	}
	if v := spec.Volumes[1]; v.CSI == nil || v.CSI.Driver != "secrets-store.csi.k8s.io" || v.CSI.VolumeAttributes["secretProviderClass"] != csiClass ||
		spec.Containers[0].VolumeMounts[1].Name != v.Name {
		t.Errorf("CSI volume %+v, mounts %v", v, spec.Containers[0].VolumeMounts)
	}
	if on, off := csiVariant(true).args, csiVariant(false).args; !slices.Contains(on, "--secrets-store-csi") || slices.Contains(off, "--secrets-store-csi") {
		t.Errorf("reroll's flags: %v with the driver watched, %v without", on, off)
	}
	w := memoryWorkloads{namespaces: 3, n: 8, deployment: func(i int) *appsv1.Deployment {
		return newDeployment(memoryNamespace(i%3), fmt.Sprintf("app-%04d", i), "memory-csi", true, consumption{})
	}}
	if got, want := w.keysIn(1), []string{"bench-mem-001/app-0001", "bench-mem-001/app-0004", "bench-mem-001/app-0007"}; !reflect.DeepEqual(got, want) {
		t.Errorf("keysIn(1) = %v, want %v", got, want)
	}
}

// TestParseHeapAlloc checks that the live heap is read from a text heap
// profile's MemStats, not from a line that merely contains the name.
func TestParseHeapAlloc(t *testing.T) {
	profile := "heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [3: 4] @ 0x1\n\n# runtime.MemStats\n# Alloc = 1111\n# TotalAlloc = 9999\n# HeapAlloc = 12345678\n# HeapSys = 20000000\n"
	if got, err := parseHeapAlloc(profile); err != nil || got != 12345678 {
		t.Errorf("parseHeapAlloc = %d, %v; want 12345678", got, err)
	}
	if _, err := parseHeapAlloc("# NotHeapAlloc = 5\n"); err == nil {
		t.Error("no HeapAlloc line: want an error")
	}
}

// TestScenarioDefaults checks that the CSI and selector variants run only
// when named.
func TestScenarioDefaults(t *testing.T) {
	dir := t.TempDir()
	for _, bin := range []string{"localcluster", "reroll"} {
		if err := os.WriteFile(filepath.Join(dir, bin), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--bin-dir=" + dir, "--controller=" + filepath.Join(dir, "reroll"), "--out=" + dir}
	o, err := parseFlags(args, io.Discard)
	variants := []string{"memory-csi-baseline", "memory-csi", "memory-selector-baseline", "memory-selector"}
	if err != nil || slices.ContainsFunc(o.scenarios, func(n string) bool { return slices.Contains(variants, n) }) || !slices.Contains(o.scenarios, "memory") {
		t.Errorf("default scenarios %v (%v): want memory and none of the variants", o.scenarios, err)
	}
	o, err = parseFlags(append(args, "--scenarios="+strings.Join(variants, ",")), io.Discard)
	if err != nil || !reflect.DeepEqual(o.scenarios, variants) {
		t.Errorf("named scenarios %v (%v)", o.scenarios, err)
	}
}

// TestControllerArgs checks that --controller-arg collects flags in order
// and refuses what is not a flag.
func TestControllerArgs(t *testing.T) {
	dir := t.TempDir()
	for _, bin := range []string{"localcluster", "reroll"} {
		if err := os.WriteFile(filepath.Join(dir, bin), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--bin-dir=" + dir, "--controller=" + filepath.Join(dir, "reroll"), "--out=" + dir}
	o, err := parseFlags(append(args, "--controller-arg=--bake-time=0s", "--controller-arg=--workers=4"), io.Discard)
	if want := []string{"--bake-time=0s", "--workers=4"}; err != nil || !reflect.DeepEqual(o.controllerArgs, want) {
		t.Errorf("controller args %v (%v), want %v", o.controllerArgs, err, want)
	}
	if _, err := parseFlags(append(args, "--controller-arg=bake-time=0s"), io.Discard); err == nil || !strings.Contains(err.Error(), "not a flag") {
		t.Errorf("--controller-arg=bake-time=0s: err %v, want one saying it is not a flag", err)
	}
}

// TestCumulative checks the rolls-over-time series: a count at every step
// from the change until the last roll, a roll exactly at a step counted at
// that step, and a roll before the change counted from the start.
func TestCumulative(t *testing.T) {
	start := time.Unix(100, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	got := cumulative(start, []time.Time{at(250), at(100), at(-5), at(100), at(420)}, 100*time.Millisecond)
	if want := []float64{1, 3, 3, 4, 4, 5}; !reflect.DeepEqual(got, want) {
		t.Errorf("cumulative = %v, want %v", got, want)
	}
	if got := cumulative(start, nil, time.Second); !reflect.DeepEqual(got, []float64{0}) {
		t.Errorf("no rolls: %v, want [0]", got)
	}
}

// TestQuantiles checks the quantile series: nearest rank, the minimum at
// 0 and the maximum at 1, whatever the order of the values.
func TestQuantiles(t *testing.T) {
	got := quantiles([]float64{40, 10, 30, 20}, 4)
	if want := []float64{10, 10, 20, 30, 40}; !reflect.DeepEqual(got, want) {
		t.Errorf("quantiles = %v, want %v", got, want)
	}
	if quantiles(nil, 4) != nil {
		t.Error("no values: want nil")
	}
	s := latencySeries("x", []float64{1.23456, 2})
	if s.Values[0] != 1.235 || len(s.Values) != quantileSteps+1 || s.Step != 0.01 || s.Unit != "ms" {
		t.Errorf("latencySeries = %+v", s)
	}
}

// TestCompactNumberLists checks that the results JSON keeps a series on
// one line, and leaves other lists and strings alone.
func TestCompactNumberLists(t *testing.T) {
	in := []byte("{\n  \"values\": [\n    0,\n    1.5,\n    -2e-07\n  ],\n  \"cmd\": [\n    \"a\",\n    \"b\"\n  ],\n  \"note\": \"[1, 2]\"\n}")
	want := "{\n  \"values\": [0,1.5,-2e-07],\n  \"cmd\": [\n    \"a\",\n    \"b\"\n  ],\n  \"note\": \"[1, 2]\"\n}"
	if got := string(compactNumberLists(in)); got != want {
		t.Errorf("compactNumberLists:\n%s\nwant\n%s", got, want)
	}
}

// TestFanoutPolicies checks the policy rounds' names: waves, pacing, both.
func TestFanoutPolicies(t *testing.T) {
	var got []string
	for _, p := range fanoutPolicies() {
		got = append(got, p.suffix())
	}
	want := []string{" (waves 1,10%,100%)", " (--max-rollouts-per-second=50)", " (waves 1,10%,100%, --max-rollouts-per-second=50)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("suffixes %q, want %q", got, want)
	}
}

// TestSelectorVariant checks the selector variants: only the objects the
// Deployments consume are labelled, nothing is in the memory scenario, and
// only the selecting variant passes --config-selector.
func TestSelectorVariant(t *testing.T) {
	labels := selectorVariant(true).labels(455)
	if labels(0)[selectedLabel] != "true" || labels(454)[selectedLabel] != "true" || labels(455) != nil {
		t.Errorf("labels of 0, 454, 455: %v %v %v", labels(0), labels(454), labels(455))
	}
	if (memoryVariant{}).labels(455)(0) != nil {
		t.Error("the memory scenario labels its objects")
	}
	if d := newMemoryData(2, 3, 2, 100); d.firstBytes(1) != int64(d.sizes[0]+d.sizes[3]) {
		t.Errorf("firstBytes(1) = %d, sizes %v: want Secret 0 and ConfigMap 0", d.firstBytes(1), d.sizes)
	}
	on, off := selectorVariant(true).args, selectorVariant(false).args
	if !slices.Contains(on, "--config-selector="+selectedLabel+"=true") || slices.ContainsFunc(off, func(a string) bool { return strings.HasPrefix(a, "--config-selector") }) {
		t.Errorf("reroll's flags: %v with the selector, %v without", on, off)
	}
}
