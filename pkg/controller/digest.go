package controller

// The digests the caches hold in place of ConfigMap and Secret values
// (see TransformForCache): pure functions of a value.

import (
	"crypto/sha256"
	"encoding/hex"
	"unsafe"
)

// digestPrefix starts every per-key digest that the cache holds in place of
// a ConfigMap or Secret value.
const digestPrefix = "sha256:"

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
