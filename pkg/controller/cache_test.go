package controller

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reroll/reroll/pkg/plan"
)

func TestKeptAnnotations(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]string
		want map[string]string
	}{
		{name: "nil", in: nil, want: nil},
		{name: "none of reroll's", in: map[string]string{"a": "b", "reroll.dev.example/x": "y"}, want: nil},
		{name: "reroll's only", in: map[string]string{plan.AnnotationAuto: "true", "meta.helm.sh/release-name": "web", plan.AnnotationConsumed: "v1"},
			want: map[string]string{plan.AnnotationAuto: "true", plan.AnnotationConsumed: "v1"}},
		{name: "and Reloader's it reads", in: map[string]string{plan.ReloaderAuto: "true", plan.ReloaderLastReloadedFrom: "{}", plan.ReloaderMatch: "true",
			"secretproviderclass.reloader.stakater.com/auto": "true", "deployment.reloader.stakater.com/rollout-strategy": "x"},
			want: map[string]string{plan.ReloaderAuto: "true", plan.ReloaderMatch: "true", "secretproviderclass.reloader.stakater.com/auto": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keptAnnotations(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTransformForCache(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: "x", Namespace: "ns", UID: "u-1", ResourceVersion: "7",
			Labels:          map[string]string{"app.kubernetes.io/managed-by": "Helm"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Foo", Name: "o"}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Annotations: map[string]string{lastAppliedAnnotation: `{"data":{"password":"hunter2"}}`,
				plan.AnnotationIgnore: "true", "meta.helm.sh/release-name": "web"},
		}
	}
	// ConfigMaps and Secrets keep only what reroll reads of their metadata.
	wantMeta := metav1.ObjectMeta{Name: "x", Namespace: "ns", ResourceVersion: "7", Annotations: map[string]string{plan.AnnotationIgnore: "true"}}
	// Workloads also keep their UID, for Events about them.
	wantWorkloadMeta := metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u-1", ResourceVersion: "7", Annotations: map[string]string{plan.AnnotationIgnore: "true"}}
	tests := []struct {
		name string
		in   any
		want any
	}{
		{
			name: "ConfigMap data and binaryData become one digest map",
			in:   &corev1.ConfigMap{ObjectMeta: meta(), Data: map[string]string{"a": "abc"}, BinaryData: map[string][]byte{"b": []byte("abc")}},
			want: &corev1.ConfigMap{ObjectMeta: wantMeta, Data: map[string]string{"a": plan.DigestValue("abc"), "b": plan.DigestValue("abc")}},
		},
		{
			name: "ConfigMap with only binaryData",
			in:   &corev1.ConfigMap{ObjectMeta: meta(), BinaryData: map[string][]byte{"b": {0xff}}},
			want: &corev1.ConfigMap{ObjectMeta: wantMeta, Data: map[string]string{"b": plan.DigestValue([]byte{0xff})}},
		},
		{
			name: "empty ConfigMap",
			in:   &corev1.ConfigMap{ObjectMeta: meta()},
			want: &corev1.ConfigMap{ObjectMeta: wantMeta},
		},
		{
			name: "no reroll annotation leaves no annotation map",
			in:   &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Annotations: map[string]string{"a": "b"}}},
			want: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}},
		},
		{
			name: "Secret data becomes digests in stringData",
			in:   &corev1.Secret{ObjectMeta: meta(), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("hunter2")}},
			want: &corev1.Secret{ObjectMeta: wantMeta, Type: corev1.SecretTypeOpaque, StringData: map[string]string{"password": plan.DigestValue("hunter2")}},
		},
		{
			name: "Deployment becomes a cachedWorkload",
			in: &appsv1.Deployment{ObjectMeta: meta(), Spec: appsv1.DeploymentSpec{Paused: true, Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: "app:1", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}},
					{Name: "proxy", Image: "proxy:1"},
				}},
			}}},
			want: &cachedWorkload{
				TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
				ObjectMeta: wantWorkloadMeta,
				References: []plan.PodReference{{Ref: plan.ConfigRef{Type: plan.TypeSecret, Name: "s"}, Site: plan.ReferenceSite{Field: plan.SiteEnvFrom, Owner: "app"}}},
				// One replica by default, none updated yet.
				Status: plan.RolloutStatus{Observed: true},
			},
		},
		{
			name: "Namespace keeps its name, labels and reroll's annotations",
			in:   &corev1.Namespace{ObjectMeta: meta(), Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			want: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", ResourceVersion: "7",
				Labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"}, Annotations: map[string]string{plan.AnnotationIgnore: "true"}}},
		},
		{
			name: "StatefulSet becomes a cachedWorkload",
			in:   &appsv1.StatefulSet{ObjectMeta: meta()},
			want: &cachedWorkload{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: wantWorkloadMeta,
				Status: plan.RolloutStatus{Observed: true, Timed: true}},
		},
		{
			name: "DaemonSet becomes a cachedWorkload",
			in:   &appsv1.DaemonSet{ObjectMeta: meta()},
			want: &cachedWorkload{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}, ObjectMeta: wantWorkloadMeta,
				Status: plan.RolloutStatus{Observed: true, Done: true, Timed: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TransformForCache(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			again, _ := TransformForCache(got)
			if !reflect.DeepEqual(again, tt.want) {
				t.Errorf("not idempotent: second pass gave %+v", again)
			}
		})
	}
}

func TestTransformKeepsNoSecretValue(t *testing.T) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{lastAppliedAnnotation: "hunter2"}},
		Data:       map[string][]byte{"p": []byte("hunter2")},
	}
	out, _ := TransformForCache(s)
	if strings.Contains(fmt.Sprintf("%+v", out), "hunter2") {
		t.Fatalf("cached Secret still holds its value: %+v", out)
	}
}

// BenchmarkTransformForCache measures the transform on a 64 KiB Secret and
// ConfigMap; allocations must not grow with the value size.
func BenchmarkTransformForCache(b *testing.B) {
	value := strings.Repeat("x", 64<<10)
	secrets := make([]*corev1.Secret, b.N)
	configMaps := make([]*corev1.ConfigMap, b.N)
	for i := range b.N {
		secrets[i] = &corev1.Secret{Data: map[string][]byte{"k": []byte(value)}}
		configMaps[i] = &corev1.ConfigMap{Data: map[string]string{"k": value}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_, _ = TransformForCache(secrets[i])
		_, _ = TransformForCache(configMaps[i])
	}
}

// FuzzCachedConsumption feeds arbitrary pod specs (decoded from JSON) through
// the cache transform and a deep copy, and checks that the cached form of a
// workload consumes exactly what its spec does.
func FuzzCachedConsumption(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"containers":[{"name":"a","env":[{"name":"A","valueFrom":{"configMapKeyRef":{"name":"cm","key":"k"}}}]}]}`,
		`{"containers":[{"name":"a","envFrom":[{"configMapRef":{"name":"cm"}},{"secretRef":{"name":"s","optional":true}}]}]}`,
		`{"volumes":[{"name":"p","projected":{"sources":[{"configMap":{"name":"cm"}},{"secret":{"name":"s","items":[{"key":"k","path":"k"}]}}]}}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, specJSON []byte) {
		var spec corev1.PodSpec
		if err := json.Unmarshal(specJSON, &spec); err != nil {
			return
		}
		o := plan.OptIn{Auto: true}
		want := plan.CalculateConsumption(plan.PodReferences(&spec), o)
		cached, _ := TransformForCache(&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}})
		copied := cached.(*cachedWorkload).DeepCopyObject().(*cachedWorkload)
		if got := plan.CalculateConsumption(copied.References, o); !reflect.DeepEqual(got, want) {
			t.Fatalf("the cached form changed the consumption:\n spec   %+v\n cached %+v", want, got)
		}
	})
}
