package main

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// testVersion is the version the tests stamp into their stand-in reroll.
const testVersion = "v0.0.0-test"

// fakeRerollSource is the stand-in for reroll's binary: building the real
// one takes minutes. Like reroll, it prints "reroll <version>" for
// --version; otherwise it prints its user and whether the CA bundle is
// there, for the containerd test.
const fakeRerollSource = `package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("reroll", version)
		return
	}
	_, err := os.Stat("/etc/ssl/certs/ca-certificates.crt")
	fmt.Printf("uid=%d gid=%d ca=%v\n", os.Getuid(), os.Getgid(), err == nil)
}
`

// buildFakeReroll builds the stand-in reroll the way `make build` builds
// reroll, stamped with version, and returns its path.
func buildFakeReroll(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module fakereroll\n\ngo 1.26\n",
		"main.go": fakeRerollSource,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "reroll")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stand-in reroll: %v\n%s", err, b)
	}
	return out
}

// testOptions are options for building every image into out, with pause
// and echoconfig built from this module, reroll's stand-in rerollBin and
// a fake CA bundle.
func testOptions(t *testing.T, out, rerollBin string, created time.Time) options {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte(fakeCABundle), 0o600); err != nil {
		t.Fatal(err)
	}
	return options{
		out:       out,
		rerollBin: rerollBin,
		version:   testVersion,
		revision:  "0123456789abcdef",
		source:    "https://example.com/reroll",
		caCerts:   ca,
		// The tests run in hack/tools/cmd/images.
		toolsDir: "../..",
		arch:     runtime.GOARCH,
		created:  created,
	}
}

// fakeCABundle is the content of the tests' CA bundle.
const fakeCABundle = "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n"

// buildAll runs the command's run with o and fails the test on error.
func buildAll(t *testing.T, o options) []built {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// readArchive unpacks the OCI layout archive at path and returns the
// descriptor of its only image and the image, read by go-containerregistry.
func readArchive(t *testing.T, path string) (v1.Descriptor, v1.Image) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("%s: %d images in index.json, want 1", path, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests[0], img
}

// entry is what the tests check of a file in a layer.
type entry struct {
	mode    int64
	dir     bool
	content string
}

// layerEntries reads the uncompressed layer and returns its files by name,
// failing the test on any owner or time other than root and want.
func layerEntries(t *testing.T, l v1.Layer, wantTime time.Time) map[string]entry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want root", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
		if !hdr.ModTime.Equal(wantTime) {
			t.Errorf("%s: mtime %v, want %v", hdr.Name, hdr.ModTime, wantTime)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got[hdr.Name] = entry{mode: hdr.Mode, dir: hdr.Typeflag == tar.TypeDir, content: string(data)}
	}
}
