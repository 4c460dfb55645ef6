package plan

import (
	"strings"
	"testing"
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
			want: DigestValue([]byte("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DigestValue(tt.value); got != tt.want {
				t.Errorf("digestValue(%q) = %q, want %q", tt.value, got, tt.want)
			}
			if got := DigestValue([]byte(tt.value)); got != tt.want {
				t.Errorf("digestValue([]byte(%q)) = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
}

func TestIsDigest(t *testing.T) {
	valid := DigestValue("x")
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
		if got := IsDigest(s); got != want {
			t.Errorf("isDigest(%q) = %v, want %v", s, got, want)
		}
	}
}
