package main

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// file is one entry of a tar stream: of a layer, or of an archive.
type file struct {
	// name is the path in the image (or archive) without the leading
	// slash, e.g. "etc/passwd". A layer's missing parent directories are
	// added.
	name string
	// mode is the permission bits (and sticky bit).
	mode int64
	// dir makes the entry a directory; data is then ignored.
	dir  bool
	data []byte
}

// withParents returns files with a 0755 directory added for every parent
// that is not in files, sorted by name, so that a directory comes before
// what it holds and the order never depends on the caller's.
func withParents(files []file) []file {
	seen := map[string]bool{}
	for _, f := range files {
		seen[f.name] = true
	}
	all := append([]file(nil), files...)
	for _, f := range files {
		for dir := path.Dir(f.name); dir != "." && dir != "/" && !seen[dir]; dir = path.Dir(dir) {
			seen[dir] = true
			all = append(all, file{name: dir, mode: 0o755, dir: true})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	return all
}

// writeTar writes files as a tar stream in their order, owned by root and
// dated modTime, with nothing of the machine that wrote it (no user names,
// no access times), so the same files always give the same bytes.
func writeTar(w io.Writer, files []file, modTime time.Time) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		name := strings.TrimPrefix(f.name, "/")
		hdr := &tar.Header{Name: name, Mode: f.mode, ModTime: modTime}
		if f.dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if f.dir {
			continue
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// readTree reads the directory tree at root into files named relative to
// it, in lexical order (parents first), with the modes an archive should
// have whatever the umask was: 0755 directories, 0644 files.
func readTree(root string) ([]file, error) {
	var files []file
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			files = append(files, file{name: filepath.ToSlash(rel), mode: 0o755, dir: true})
			return nil
		}
		data, err := os.ReadFile(p)
		files = append(files, file{name: filepath.ToSlash(rel), mode: 0o644, data: data})
		return err
	})
	return files, err
}
