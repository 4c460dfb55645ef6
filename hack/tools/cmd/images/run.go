package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// options are the command line of images.
type options struct {
	// out is the directory the archives are written into.
	out string
	// rerollBin is reroll's binary, built by `make build`; empty: no
	// reroll image.
	rerollBin string
	// version, revision and source are reroll's OCI labels; version is
	// also the reroll image's tag.
	version, revision, source string
	// caCerts is the CA bundle put into reroll's image (for an https
	// webhook); skipped when empty or missing.
	caCerts string
	// toolsDir is the hack/tools module, where cmd/pause and
	// cmd/echoconfig are built.
	toolsDir string
	// pauseBin and echoconfigBin are prebuilt binaries; empty: built from
	// toolsDir.
	pauseBin, echoconfigBin string
	// arch is the images' GOARCH (their OS is linux).
	arch string
	// created is every timestamp in the images.
	created time.Time
}

// built is one archive written.
type built struct {
	ref, file, digest string
	size              int64
}

// run builds every image and writes each archive into o.out.
func run(ctx context.Context, o options) ([]built, error) {
	tmp, err := os.MkdirTemp("", "images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	specs, err := imageSpecs(ctx, o, tmp)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	var done []built
	for _, s := range specs {
		img, err := buildImage(s, o.arch, o.created)
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(o.out, s.archive)
		if err := writeArchive(dst, s.ref, img, o.arch, tmp, o.created); err != nil {
			return nil, fmt.Errorf("%s: %w", s.ref, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(dst)
		if err != nil {
			return nil, err
		}
		done = append(done, built{ref: s.ref, file: dst, digest: digest.String(), size: st.Size()})
	}
	return done, nil
}

// imageSpecs reads (or builds into tmp) each image's programs, checks
// they are static linux binaries, and describes the images.
func imageSpecs(ctx context.Context, o options, tmp string) ([]imageSpec, error) {
	pause, err := program(ctx, o, o.pauseBin, "./cmd/pause", tmp)
	if err != nil {
		return nil, err
	}
	echoconfig, err := program(ctx, o, o.echoconfigBin, "./cmd/echoconfig", tmp)
	if err != nil {
		return nil, err
	}
	specs := []imageSpec{pauseSpec(pause, o.source), echoconfigSpec(echoconfig, o.source)}
	if o.rerollBin == "" {
		fmt.Fprintln(os.Stderr, "images: no --reroll-bin: reroll's image is not built")
		return specs, nil
	}
	if err := checkBinary(o.rerollBin, o.arch); err != nil {
		return nil, err
	}
	reroll, err := os.ReadFile(o.rerollBin)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(reroll, o.rerollBin, o.version); err != nil {
		return nil, err
	}
	caCerts, err := readCACerts(o.caCerts)
	if err != nil {
		return nil, err
	}
	from := origin{source: o.source, revision: o.revision}
	return append(specs, rerollSpec(reroll, caCerts, o.version, from)), nil
}

// program returns the content of a test image's binary: the prebuilt one
// at bin, or pkg built from o.toolsDir.
func program(ctx context.Context, o options, bin, pkg, tmp string) ([]byte, error) {
	if bin == "" {
		var err error
		if bin, err = goBuild(ctx, o.toolsDir, pkg, tmp, o.arch); err != nil {
			return nil, err
		}
	}
	if err := checkBinary(bin, o.arch); err != nil {
		return nil, err
	}
	return os.ReadFile(bin)
}

// readCACerts reads the CA bundle at path; nil, with a note, when path is
// empty or missing: reroll needs it only for an https webhook.
func readCACerts(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "images: no %s: reroll's image has no CA bundle (an https --webhook-url will fail)\n", path)
		return nil, nil
	}
	return data, err
}
