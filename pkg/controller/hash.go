package controller

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"
)

// MinHashKeyBytes is the shortest hash key reroll accepts.
const MinHashKeyBytes = 32

// HashKey is the secret key every value reroll writes is computed under.
// With HMAC-SHA256 under a key only reroll can read, someone who can read
// Deployments but not Secrets learns nothing about Secret content from the
// annotations, not even by guessing low-entropy values offline.
type HashKey struct {
	secret []byte
	id     string
}

// NewHashKey wraps secret, which must be at least MinHashKeyBytes long.
func NewHashKey(secret []byte) (HashKey, error) {
	if len(secret) < MinHashKeyBytes {
		return HashKey{}, fmt.Errorf("hash key is %d bytes, need at least %d", len(secret), MinHashKeyBytes)
	}
	// The ID identifies the key in annotations so that a replaced key is
	// noticed; it is itself keyed, so it says nothing about the key.
	id := hmacHex(secret, 8, []byte("reroll.dev/hash-key-id"))
	return HashKey{secret: slices.Clone(secret), id: id}, nil
}

// ID returns a short public identifier of the key.
func (k HashKey) ID() string { return k.id }

// hmacHex returns the first n bytes of HMAC-SHA256(secret, parts...) in hex.
func hmacHex(secret []byte, n int, parts ...[]byte) string {
	m := hmac.New(sha256.New, secret)
	for _, p := range parts {
		writeField(m, p)
	}
	return hex.EncodeToString(m.Sum(nil)[:n])
}

// writeField writes p length-prefixed, so that the concatenation of fields
// is unambiguous ("ab"+"c" and "a"+"bc" hash differently).
func writeField(h hash.Hash, p []byte) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
	h.Write(p)
}

// fingerprintAbsent is the fingerprint of an optional object that does not
// exist. It is not secret: existence is metadata, not content.
const fingerprintAbsent = "absent"

// fingerprintBytes is how many bytes of HMAC output a fingerprint keeps:
// 128 bits is far beyond what change detection needs.
const fingerprintBytes = 16

// entryID names what a workload consumes from one object inside the
// consumed annotation: "ConfigMap/name" when it consumes every key, or
// "ConfigMap/name@<sig>" when it consumes only named keys, sig being a short
// digest of the key names. Changing which keys are consumed then shows up as
// a new entry (baselined) rather than as changed content (rolled): the pod
// template edit that changed the references already rolled the workload.
func entryID(u consumption) string {
	if u.allKeys {
		return u.ref.String()
	}
	keys := slices.Sorted(maps.Keys(u.keys))
	sum := sha256.Sum256([]byte(strings.Join(keys, "\x00")))
	return u.ref.String() + "@" + hex.EncodeToString(sum[:4])
}

// calculateFingerprint returns the keyed fingerprint of the content u
// consumes from an object whose cached per-key digests are given, and the
// keys that a non-optional reference needs but the object lacks.
func calculateFingerprint(key HashKey, u consumption, digests map[string]string) (fp string, missing []string) {
	var keys []string
	if u.allKeys {
		keys = slices.Sorted(maps.Keys(digests))
		for k, required := range u.keys {
			if _, ok := digests[k]; !ok && required {
				missing = append(missing, k)
			}
		}
	} else {
		keys = slices.Sorted(maps.Keys(u.keys))
		for _, k := range keys {
			if _, ok := digests[k]; !ok && u.keys[k] {
				missing = append(missing, k)
			}
		}
	}
	slices.Sort(missing)
	m := hmac.New(sha256.New, key.secret)
	writeField(m, []byte(entryID(u)))
	for _, k := range keys {
		writeField(m, []byte(k))
		// An absent optional key writes an empty digest, which no present
		// key can have.
		writeField(m, []byte(digests[k]))
	}
	return hex.EncodeToString(m.Sum(nil)[:fingerprintBytes]), missing
}

// calculateConfigHash returns the value written to the pod template's
// config-hash annotation for a consumed state.
func calculateConfigHash(key HashKey, s consumedState) string {
	return hmacHex(key.secret, fingerprintBytes, []byte("reroll.dev/config-hash"), []byte(s.String()))
}
