package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestImages builds every image twice and checks what containerd and the
// kubelet will read of each: the name in the archive, the platform, the
// user, the entrypoint, the labels and the files with their modes, and
// that the second build is byte for byte the first.
func TestImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pause and echoconfig")
	}
	created := time.Unix(1700000000, 0).UTC()
	rerollBin := buildFakeReroll(t, testVersion)
	rerollData, err := os.ReadFile(rerollBin)
	if err != nil {
		t.Fatal(err)
	}
	first := buildAll(t, testOptions(t, t.TempDir(), rerollBin, created))
	second := buildAll(t, testOptions(t, t.TempDir(), rerollBin, created))
	checkReproducible(t, first, second)

	// A revision of "" means no revision label.
	wantLabels := func(version, revision, title string) map[string]string {
		return map[string]string{
			"org.opencontainers.image.version":  version,
			"org.opencontainers.image.source":   "https://example.com/reroll",
			"org.opencontainers.image.revision": revision,
			"org.opencontainers.image.title":    title,
		}
	}
	tests := []struct {
		ref, archive, user, entrypoint string
		labels                         map[string]string
		// layers are each layer's files (name to mode, "/" suffix: a
		// directory); content holds the files whose content is checked.
		layers  []map[string]int64
		content map[string]string
	}{{
		ref: "reroll.local/pause:1", archive: "pause.tar", user: "65535:65535", entrypoint: "/pause",
		labels: wantLabels("1", "", "reroll-pause"),
		layers: []map[string]int64{{"pause": 0o755}},
	}, {
		ref: "reroll.local/echoconfig:1", archive: "echoconfig.tar", user: "65532:65532", entrypoint: "/echoconfig",
		labels: wantLabels("1", "", "reroll-echoconfig"),
		layers: []map[string]int64{{"echoconfig": 0o755}},
	}, {
		ref: "reroll.local/reroll:" + testVersion, archive: "reroll.tar", user: "65532:65532", entrypoint: "/reroll",
		labels: wantLabels(testVersion, "0123456789abcdef", "reroll"),
		layers: []map[string]int64{{
			"etc/": 0o755, "etc/passwd": 0o644, "etc/group": 0o644, "tmp/": 0o1777,
			"etc/ssl/": 0o755, "etc/ssl/certs/": 0o755, "etc/ssl/certs/ca-certificates.crt": 0o644,
		}, {"reroll": 0o755}},
		content: map[string]string{"etc/ssl/certs/ca-certificates.crt": fakeCABundle, "reroll": string(rerollData)},
	}}
	for i, tt := range tests {
		t.Run(tt.archive, func(t *testing.T) {
			if first[i].ref != tt.ref || filepath.Base(first[i].file) != tt.archive {
				t.Fatalf("built %s in %s, want %s in %s", first[i].ref, first[i].file, tt.ref, tt.archive)
			}
			desc, img := readArchive(t, first[i].file)
			checkNamed(t, desc, tt.ref, first[i].digest)
			cfg := checkConfig(t, img, created)
			if cfg.Config.User != tt.user || !reflect.DeepEqual(cfg.Config.Entrypoint, []string{tt.entrypoint}) {
				t.Errorf("user %q, entrypoint %q; want %q, [%q]", cfg.Config.User, cfg.Config.Entrypoint, tt.user, tt.entrypoint)
			}
			for k, v := range tt.labels {
				if cfg.Config.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, cfg.Config.Labels[k], v)
				}
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Annotations, cfg.Config.Labels) {
				t.Errorf("manifest annotations %v, want the labels %v", m.Annotations, cfg.Config.Labels)
			}
			checkLayers(t, img, created, tt.layers, tt.content)
		})
	}
}

// checkReproducible fails the test unless two builds wrote the same
// images into byte-identical archives.
func checkReproducible(t *testing.T, first, second []built) {
	t.Helper()
	if len(first) != 3 || len(second) != 3 {
		t.Fatalf("built %d and %d images, want 3", len(first), len(second))
	}
	for i := range first {
		if first[i].digest != second[i].digest {
			t.Errorf("%s: digests %s and %s: not reproducible", first[i].ref, first[i].digest, second[i].digest)
		}
		a, errA := os.ReadFile(first[i].file)
		b, errB := os.ReadFile(second[i].file)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the two archives differ", first[i].file)
		}
	}
}

// checkNamed checks the image's entry in index.json: the names containerd
// imports it under, its platform and its digest.
func checkNamed(t *testing.T, desc v1.Descriptor, ref, digest string) {
	t.Helper()
	if got := desc.Annotations["io.containerd.image.name"]; got != ref {
		t.Errorf("io.containerd.image.name = %q, want %q", got, ref)
	}
	if got, want := desc.Annotations["org.opencontainers.image.ref.name"], ref[strings.LastIndex(ref, ":")+1:]; got != want {
		t.Errorf("org.opencontainers.image.ref.name = %q, want %q", got, want)
	}
	if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != runtime.GOARCH {
		t.Errorf("platform %v, want linux/%s", desc.Platform, runtime.GOARCH)
	}
	if desc.Digest.String() != digest || desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("index entry %s %s, want %s %s", desc.MediaType, desc.Digest, types.OCIManifestSchema1, digest)
	}
}

// checkConfig validates img (every digest, size and diff ID agrees with
// the content) and returns its config, checking the platform and times.
func checkConfig(t *testing.T, img v1.Image, created time.Time) *v1.ConfigFile {
	t.Helper()
	if err := validate.Image(img); err != nil {
		t.Fatalf("invalid image: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s, want linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	if !cfg.Created.Equal(created) {
		t.Errorf("created %v, want SOURCE_DATE_EPOCH %v", cfg.Created.Time, created)
	}
	for _, h := range cfg.History {
		if !h.Created.Equal(created) {
			t.Errorf("history %q created %v, want %v", h.CreatedBy, h.Created.Time, created)
		}
	}
	return cfg
}

// checkLayers checks that img has exactly the layers want, each an OCI
// gzip layer holding exactly the files named, with their modes, and that
// binaries are ELF executables.
func checkLayers(t *testing.T, img v1.Image, created time.Time, want []map[string]int64, content map[string]string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(want) {
		t.Fatalf("%d layers, want %d", len(layers), len(want))
	}
	for i, l := range layers {
		if mt, err := l.MediaType(); err != nil || mt != types.OCILayer {
			t.Errorf("layer %d: media type %s (%v), want %s", i, mt, err, types.OCILayer)
		}
		got := layerEntries(t, l, created)
		names := map[string]int64{}
		for name, e := range got {
			names[name] = e.mode
			if e.dir != strings.HasSuffix(name, "/") {
				t.Errorf("layer %d: %s: directory %v", i, name, e.dir)
			}
			if e.mode == 0o755 && !e.dir && !strings.HasPrefix(e.content, "\x7fELF") {
				t.Errorf("layer %d: %s is executable but no ELF binary", i, name)
			}
			if c, ok := content[name]; ok && e.content != c {
				t.Errorf("layer %d: %s: content differs from its source (%d bytes, want %d)", i, name, len(e.content), len(c))
			}
		}
		if !reflect.DeepEqual(names, want[i]) {
			t.Errorf("layer %d holds %v, want %v", i, names, want[i])
		}
	}
}
