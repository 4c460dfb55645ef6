// Package plantest builds the pod spec pieces that the tests of pkg/plan and
// pkg/controller both write, so that the two describe references alike.
package plantest

import corev1 "k8s.io/api/core/v1"

// ConfigMapKeyEnv returns an env var named name from key of ConfigMap cm.
func ConfigMapKeyEnv(name, cm, key string, optional bool) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Key: key, Optional: OptionalPtr(optional)}}}
}

// SecretKeyEnv returns an env var named name from key of Secret secret.
func SecretKeyEnv(name, secret, key string, optional bool) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key, Optional: OptionalPtr(optional)}}}
}

// OptionalPtr returns nil for false, as most manifests leave optional unset.
func OptionalPtr(optional bool) *bool {
	if !optional {
		return nil
	}
	return &optional
}
