package plan

// The key of reroll's hashes and the HMAC primitives over it.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
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

// sum returns the first n bytes of the key's HMAC-SHA256 of fields, in hex.
func (k HashKey) sum(n int, fields ...[]byte) string {
	return hmacHex(k.secret, n, fields...)
}

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
