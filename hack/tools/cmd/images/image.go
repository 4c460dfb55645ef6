package main

import (
	"bytes"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerSpec is one layer of an image.
type layerSpec struct {
	// createdBy is the layer's line in the image's history.
	createdBy string
	files     []file
}

// imageSpec is what goes into one image; buildImage turns it into one.
type imageSpec struct {
	ref string
	// archive is the file name of the image's archive in --out.
	archive string
	layers  []layerSpec
	// config's Labels are also the manifest's annotations.
	config v1.Config
}

// buildImage makes the linux/arch OCI image that s describes, with every
// timestamp at created.
func buildImage(s imageSpec, arch string, created time.Time) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: created},
		Config:       s.config,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, 0, len(s.layers))
	for _, ls := range s.layers {
		layer, err := tarLayer(ls.files, created)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.ref, err)
		}
		adds = append(adds, mutate.Addendum{
			Layer:   layer,
			History: v1.History{Created: v1.Time{Time: created}, CreatedBy: ls.createdBy},
		})
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, err
	}
	// The labels are also manifest annotations, where OCI tools that do
	// not read configs (registries, `crane manifest`) look for them.
	annotated, ok := mutate.Annotations(img, s.config.Labels).(v1.Image)
	if !ok {
		return nil, fmt.Errorf("%s: annotating the manifest did not give an image", s.ref)
	}
	return annotated, nil
}

// tarLayer is a gzipped OCI layer holding files (and their parent
// directories), all owned by root and dated modTime.
func tarLayer(files []file, modTime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	if err := writeTar(&buf, withParents(files), modTime); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}
