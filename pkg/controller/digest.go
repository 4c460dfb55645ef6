package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// digestPrefix starts every per-key digest that the cache holds in place of
// a ConfigMap or Secret value.
const digestPrefix = "sha256:"

// lastAppliedAnnotation is kubectl's copy of the whole applied object. On a
// Secret it holds every value in clear text, so it is never cached.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// digestValue returns "sha256:<hex>" of a ConfigMap or Secret value. A value
// that already has that exact form is returned unchanged, which makes the
// cache transform idempotent without a marker: re-digesting a digest would
// need a SHA-256 preimage to collide with a real change. It never copies the
// value: values can be large, and every one passes through here.
func digestValue[T string | []byte](v T) string {
	if isDigest(v) {
		return string(v)
	}
	sum := sha256Of(v)
	return digestPrefix + hex.EncodeToString(sum[:])
}

// sha256Of hashes a string or byte slice without copying it.
func sha256Of[T string | []byte](v T) [sha256.Size]byte {
	switch x := any(v).(type) {
	case string:
		// Read-only view of the string's bytes: sha256 does not modify or
		// keep its input, and []byte(x) would copy the whole value.
		return sha256.Sum256(unsafe.Slice(unsafe.StringData(x), len(x)))
	case []byte:
		return sha256.Sum256(x)
	}
	panic("unreachable")
}

// isDigest reports whether v has the form digestValue produces.
func isDigest[T string | []byte](v T) bool {
	if len(v) != len(digestPrefix)+2*sha256.Size {
		return false
	}
	for i := 0; i < len(digestPrefix); i++ {
		if v[i] != digestPrefix[i] {
			return false
		}
	}
	for i := len(digestPrefix); i < len(v); i++ {
		c := v[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// TransformForCache is the informer transform for every object reroll
// caches. It runs before an object enters the cache, so values never do:
//   - ConfigMaps: data and binaryData become one data map of per-key digests
//     (their keys are disjoint by API validation).
//   - Secrets: data becomes per-key digests held in stringData, a field the
//     API server never returns and reroll never writes back.
//   - ConfigMaps and Secrets keep only the metadata reroll reads: name,
//     namespace, resourceVersion and reroll's own annotations. Labels, other
//     annotations (Helm and kubectl add several) and the UID go.
//   - Deployments, StatefulSets and DaemonSets become a cachedWorkload: only
//     their identity, reroll's annotations and the references of their pod
//     template.
//   - Anything else loses managedFields and kubectl's last-applied
//     annotation.
//
// The cache then costs O(keys) per object, not O(data + metadata). The
// transform mutates its argument, which client-go allows for freshly decoded
// objects, and is idempotent, as client-go asks.
func TransformForCache(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		keepConfigMetadata(&o.ObjectMeta)
		for k, v := range o.Data {
			o.Data[k] = digestValue(v)
		}
		if len(o.BinaryData) > 0 && o.Data == nil {
			o.Data = make(map[string]string, len(o.BinaryData))
		}
		for k, v := range o.BinaryData {
			o.Data[k] = digestValue(v)
		}
		o.BinaryData = nil
	case *corev1.Secret:
		keepConfigMetadata(&o.ObjectMeta)
		if len(o.Data) > 0 {
			digests := make(map[string]string, len(o.Data))
			for k, v := range o.Data {
				digests[k] = digestValue(v)
			}
			o.StringData = digests
		}
		o.Data = nil
	case *appsv1.Deployment:
		return newCachedWorkload(appsv1.SchemeGroupVersion.WithKind("Deployment"), o, &o.Spec.Template.Spec), nil
	case *appsv1.StatefulSet:
		return newCachedWorkload(appsv1.SchemeGroupVersion.WithKind("StatefulSet"), o, &o.Spec.Template.Spec), nil
	case *appsv1.DaemonSet:
		return newCachedWorkload(appsv1.SchemeGroupVersion.WithKind("DaemonSet"), o, &o.Spec.Template.Spec), nil
	case *cachedWorkload:
		// Already transformed.
	default:
		stripMetadata(obj)
	}
	return obj, nil
}

// keepConfigMetadata reduces a ConfigMap's or Secret's metadata to what
// reroll reads: its name, namespace and resourceVersion, and its reroll.dev/
// annotations. reroll caches every config object in the cluster, so each
// byte of metadata kept here is multiplied by thousands.
func keepConfigMetadata(m *metav1.ObjectMeta) {
	*m = metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, ResourceVersion: m.ResourceVersion, Annotations: rerollAnnotations(m.Annotations)}
}

// stripMetadata drops the metadata reroll never reads and that can dwarf the
// rest of a small object.
func stripMetadata(obj any) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return // a tombstone or a list: nothing to strip
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a != nil {
		delete(a, lastAppliedAnnotation)
	}
}

// cachedDigests returns the per-key digests of a ConfigMap or Secret that
// went through TransformForCache. The map is shared with the cache: read it,
// never write it.
func cachedDigests(obj any) map[string]string {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return o.Data
	case *corev1.Secret:
		return o.StringData
	}
	return nil
}
