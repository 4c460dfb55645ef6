package controller

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestReferencesOnly(t *testing.T) {
	cmRef := corev1.LocalObjectReference{Name: "cm"}
	cmKey := &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: cmRef, Key: "k"}}
	secretKey := &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "p"}}
	fieldRef := &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}
	cmVolume := &corev1.ConfigMapVolumeSource{LocalObjectReference: cmRef, Items: []corev1.KeyToPath{{Key: "k", Path: "k"}}}
	secretVolume := &corev1.SecretVolumeSource{SecretName: "s"}
	tests := []struct {
		name string
		spec corev1.PodSpec
		want corev1.PodSpec
	}{
		{name: "empty", spec: corev1.PodSpec{}, want: corev1.PodSpec{}},
		{
			name: "containers keep their name and references only",
			spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "sidecar", Image: "s:1", Env: []corev1.EnvVar{{Name: "P", ValueFrom: secretKey}}}},
				Containers: []corev1.Container{
					{Name: "app", Image: "app:1", Command: []string{"run"}, Env: []corev1.EnvVar{
						{Name: "LITERAL", Value: "a large literal value"},
						{Name: "POD", ValueFrom: fieldRef},
						{Name: "K", ValueFrom: cmKey},
					}, EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: cmRef}}}},
					{Name: "proxy", Image: "proxy:1", Env: []corev1.EnvVar{{Name: "POD", ValueFrom: fieldRef}}},
				},
				ServiceAccountName: "app",
				NodeSelector:       map[string]string{"disk": "ssd"},
			},
			want: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "sidecar", Env: []corev1.EnvVar{{Name: "P", ValueFrom: secretKey}}}},
				Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{{Name: "K", ValueFrom: cmKey}},
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: cmRef}}}}},
			},
		},
		{
			name: "volumes keep configMap, secret and their projected sources only",
			spec: corev1.PodSpec{Volumes: []corev1.Volume{
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: cmVolume}},
				{Name: "s", VolumeSource: corev1.VolumeSource{Secret: secretVolume}},
				{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: cmRef}},
				}}}},
				{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				}}}},
			}},
			want: corev1.PodSpec{Volumes: []corev1.Volume{
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: cmVolume}},
				{Name: "s", VolumeSource: corev1.VolumeSource{Secret: secretVolume}},
				{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: cmRef}},
				}}}},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := referencesOnly(&tt.spec); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRerollAnnotations(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]string
		want map[string]string
	}{
		{name: "nil", in: nil, want: nil},
		{name: "none of reroll's", in: map[string]string{"a": "b", "reroll.dev.example/x": "y"}, want: nil},
		{name: "reroll's only", in: map[string]string{AnnotationAuto: "true", "meta.helm.sh/release-name": "web", AnnotationConsumed: "v1"},
			want: map[string]string{AnnotationAuto: "true", AnnotationConsumed: "v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rerollAnnotations(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
