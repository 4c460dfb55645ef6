package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Annotations on the image's entry in an OCI layout's index.json that
// name it.
const (
	// containerdImageName is the full name containerd gives the image on
	// import. Tried with Debian's containerd 1.6.20: with it, `ctr images
	// import` names the image reroll.local/pause:1; with only the OCI ref
	// name "1", it names it import-<date>:1.
	containerdImageName = "io.containerd.image.name"
	// ociRefName is the OCI image-layout's own name for the image: the tag,
	// as containerd's and BuildKit's exports write it.
	ociRefName = "org.opencontainers.image.ref.name"
)

// writeArchive writes img, named ref, as an OCI image layout in a tar
// archive at dst, which containerd imports under ref with
// `ctr images import`. go-containerregistry writes the layout (blobs,
// index.json) into a directory under tmp, and this packs it the way
// writeTar packs a layer, so the archive is as reproducible as the image.
//
// An OCI layout rather than the `docker save` format of
// tarball.MultiRefWriteToFile. containerd 1.6.20 names both right (the
// docker format by its RepoTags), but from the docker format it makes a
// Docker manifest of its own: the digest `ctr images ls` shows is not the
// one built, and the manifest's annotations are gone. The OCI layout is
// imported as it is, under the name in containerdImageName.
func writeArchive(dst, ref string, img v1.Image, arch string, tmp string, modTime time.Time) error {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(tmp, "layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	err = p.AppendImage(img,
		layout.WithAnnotations(map[string]string{containerdImageName: tag.Name(), ociRefName: tag.TagStr()}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
	if err != nil {
		return err
	}
	files, err := readTree(dir)
	if err != nil {
		return err
	}

	// Write next to dst and rename, so that a failed run leaves the old
	// archive or none, never half of one.
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := writeTar(f, files, modTime); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	// CreateTemp makes it 0600; an archive is for anyone to import.
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}
