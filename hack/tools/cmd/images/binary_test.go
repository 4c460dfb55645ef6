package main

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestCheckBinary checks that only a static linux Go binary of the right
// architecture goes into an image, and that reroll's must hold its version.
func TestCheckBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	static := buildFakeReroll(t, testVersion)
	if err := checkBinary(static, runtime.GOARCH); err != nil {
		t.Errorf("static Go binary: %v", err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	if err := checkBinary(static, other); err == nil || !strings.Contains(err.Error(), "want GOARCH="+other) {
		t.Errorf("wrong architecture: err = %v", err)
	}
	script := filepath.Join(t.TempDir(), "reroll")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkBinary(script, runtime.GOARCH); err == nil || !strings.Contains(err.Error(), "not a linux executable") {
		t.Errorf("script: err = %v", err)
	}
	// Debian's own programs are dynamically linked.
	if err := checkBinary("/bin/sh", runtime.GOARCH); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/sh: err = %v", err)
	}

	data, err := os.ReadFile(static)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkVersion(data, static, testVersion); err != nil {
		t.Errorf("its own version: %v", err)
	}
	if err := checkVersion(data, static, "v9.9.9"); err == nil {
		t.Errorf("another version: no error")
	}
}

// TestBuildFlagsMatchDockerfile checks that the Dockerfile builds reroll
// the way `make build` does, for the binary the images tool packs: the
// issue asks that both images hold the same binary.
func TestBuildFlagsMatchDockerfile(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	makefile, dockerfile := read("Makefile"), read("Dockerfile")

	ldflags := regexp.MustCompile(`(?m)^LDFLAGS := (.*)$`).FindStringSubmatch(makefile)
	makeBuild := regexp.MustCompile(`(?m)^\t(CGO_ENABLED=0 go build .*) -o \$\(BIN\) \./cmd/controller$`).FindStringSubmatch(makefile)
	dockerBuild := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*) -o /out/reroll \./cmd/controller$`).FindStringSubmatch(dockerfile)
	if ldflags == nil || makeBuild == nil || dockerBuild == nil {
		t.Fatalf("cannot find the build of ./cmd/controller: Makefile LDFLAGS %q, build %q; Dockerfile %q", ldflags, makeBuild, dockerBuild)
	}
	fromMake := strings.ReplaceAll(strings.ReplaceAll(makeBuild[1], "$(LDFLAGS)", ldflags[1]), "$(VERSION)", "VERSION")
	fromDocker := strings.ReplaceAll(dockerBuild[1], "${VERSION}", "VERSION")
	if fromMake != fromDocker {
		t.Errorf("make build runs\n\t%s\nthe Dockerfile runs\n\t%s", fromMake, fromDocker)
	}
	if want := `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=VERSION"`; fromMake != want {
		t.Errorf("make build runs %s, want %s", fromMake, want)
	}
}
