package plan

// The digests the caches hold in place of ConfigMap and Secret values
// (see TransformForCache): pure functions of a value.

import (
	"crypto/sha256"
	"encoding/hex"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
)

// DigestPrefix starts every per-key digest that the cache holds in place of
// a ConfigMap or Secret value.
const DigestPrefix = "sha256:"

// DigestValue returns "sha256:<hex>" of a ConfigMap or Secret value. A value
// that already has that exact form is returned unchanged, which makes the
// cache transform idempotent without a marker: re-digesting a digest would
// need a SHA-256 preimage to collide with a real change. It never copies the
// value: values can be large, and every one passes through here.
func DigestValue[T string | []byte](v T) string {
	if IsDigest(v) {
		return string(v)
	}
	sum := sha256Of(v)
	return DigestPrefix + hex.EncodeToString(sum[:])
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

// IsDigest reports whether v has the form DigestValue produces.
func IsDigest[T string | []byte](v T) bool {
	if len(v) != len(DigestPrefix)+2*sha256.Size {
		return false
	}
	for i := 0; i < len(DigestPrefix); i++ {
		if v[i] != DigestPrefix[i] {
			return false
		}
	}
	for i := len(DigestPrefix); i < len(v); i++ {
		c := v[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CachedDigests returns the per-key digests of a ConfigMap or Secret that
// went through TransformForCache. The map is shared with the cache: read it,
// never write it.
func CachedDigests(obj any) map[string]string {
	switch o := obj.(type) {
	case interface{ ObjectDigests() map[string]string }:
		return o.ObjectDigests()
	case *corev1.ConfigMap:
		return o.Data
	case *corev1.Secret:
		return o.StringData
	}
	return nil
}
