package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// goBuild builds the main package pkg of the module in dir into
// tmp/<base of pkg> and returns that path. It builds the way `make build`
// builds reroll (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"): static, and
// with no path of this machine in it. -buildvcs=false keeps the commit out
// of the binary, so an image's digest changes only when its program does.
func goBuild(ctx context.Context, dir, pkg, tmp, arch string) (string, error) {
	out := filepath.Join(tmp, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %w", pkg, dir, err)
	}
	return out, nil
}

// checkBinary makes sure the program at path can run in an image with
// nothing else in it: a linux ELF executable for arch with no dynamic
// loader, from a Go build with CGO_ENABLED=0 and -trimpath.
func checkBinary(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: not a linux executable: %w", path, err)
	}
	defer f.Close()
	if want, ok := elfMachine(arch); !ok || f.Machine != want {
		return fmt.Errorf("%s: built for %v, want GOARCH=%s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked, want a static binary (CGO_ENABLED=0)", path)
		}
	}

	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: no Go build information: %w", path, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" {
		return fmt.Errorf("%s: built with CGO_ENABLED=%q, want 0", path, settings["CGO_ENABLED"])
	}
	if settings["-trimpath"] != "true" {
		return fmt.Errorf("%s: built without -trimpath", path)
	}
	return nil
}

// checkVersion makes sure reroll's binary holds version, so that the
// image's tag and labels say what `reroll --version` says: a bin/reroll
// left from another commit fails here. Go records -ldflags in the binary
// only without -trimpath, so the stamped string itself is looked for.
func checkVersion(bin []byte, path, version string) error {
	if !bytes.Contains(bin, []byte(version)) {
		return fmt.Errorf("%s: no %q in it: was it built with -X main.version=%s? (make build VERSION=%s)", path, version, version, version)
	}
	return nil
}

// elfMachine is the ELF machine of a GOARCH this tool builds images for.
func elfMachine(arch string) (elf.Machine, bool) {
	switch arch {
	case "amd64":
		return elf.EM_X86_64, true
	case "arm64":
		return elf.EM_AARCH64, true
	}
	return 0, false
}
