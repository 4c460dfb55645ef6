package controller

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDigestValue(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{name: "empty", value: "", want: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{name: "text", value: "abc", want: "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{name: "a digest is kept", value: "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want: "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{name: "upper-case hex is not a digest", value: "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
			want: digestValue([]byte("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := digestValue(tt.value); got != tt.want {
				t.Errorf("digestValue(%q) = %q, want %q", tt.value, got, tt.want)
			}
			if got := digestValue([]byte(tt.value)); got != tt.want {
				t.Errorf("digestValue([]byte(%q)) = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
}

func TestIsDigest(t *testing.T) {
	valid := digestValue("x")
	tests := map[string]bool{
		valid:                  true,
		valid[:len(valid)-1]:   false,
		valid + "0":            false,
		strings.ToUpper(valid): false,
		"sha1:" + valid[7:]:    false,
		valid[:70] + "g":       false,
		"":                     false,
	}
	for s, want := range tests {
		if got := isDigest(s); got != want {
			t.Errorf("isDigest(%q) = %v, want %v", s, got, want)
		}
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
				AnnotationIgnore: "true", "meta.helm.sh/release-name": "web"},
		}
	}
	// ConfigMaps and Secrets keep only what reroll reads of their metadata.
	wantMeta := metav1.ObjectMeta{Name: "x", Namespace: "ns", ResourceVersion: "7", Annotations: map[string]string{AnnotationIgnore: "true"}}
	// Workloads also keep their UID, for Events about them.
	wantWorkloadMeta := metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u-1", ResourceVersion: "7", Annotations: map[string]string{AnnotationIgnore: "true"}}
	tests := []struct {
		name string
		in   any
		want any
	}{
		{
			name: "ConfigMap data and binaryData become one digest map",
			in:   &corev1.ConfigMap{ObjectMeta: meta(), Data: map[string]string{"a": "abc"}, BinaryData: map[string][]byte{"b": []byte("abc")}},
			want: &corev1.ConfigMap{ObjectMeta: wantMeta, Data: map[string]string{"a": digestValue("abc"), "b": digestValue("abc")}},
		},
		{
			name: "ConfigMap with only binaryData",
			in:   &corev1.ConfigMap{ObjectMeta: meta(), BinaryData: map[string][]byte{"b": {0xff}}},
			want: &corev1.ConfigMap{ObjectMeta: wantMeta, Data: map[string]string{"b": digestValue([]byte{0xff})}},
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
			want: &corev1.Secret{ObjectMeta: wantMeta, Type: corev1.SecretTypeOpaque, StringData: map[string]string{"password": digestValue("hunter2")}},
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
				References: []podReference{{ref: configRef{typeSecret, "s"}, site: referenceSite{field: siteEnvFrom, owner: "app"}}},
				// One replica by default, none updated yet.
				Status: rolloutStatus{observed: true},
			},
		},
		{
			name: "Namespace keeps its name, labels and reroll's annotations",
			in:   &corev1.Namespace{ObjectMeta: meta(), Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			want: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", ResourceVersion: "7",
				Labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"}, Annotations: map[string]string{AnnotationIgnore: "true"}}},
		},
		{
			name: "StatefulSet becomes a cachedWorkload",
			in:   &appsv1.StatefulSet{ObjectMeta: meta()},
			want: &cachedWorkload{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: wantWorkloadMeta,
				Status: rolloutStatus{observed: true, timed: true}},
		},
		{
			name: "DaemonSet becomes a cachedWorkload",
			in:   &appsv1.DaemonSet{ObjectMeta: meta()},
			want: &cachedWorkload{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}, ObjectMeta: wantWorkloadMeta,
				Status: rolloutStatus{observed: true, done: true, timed: true}},
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
