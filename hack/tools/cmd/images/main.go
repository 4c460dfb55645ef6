// Command images builds reroll's container images without Docker or a
// registry: reroll's own image and the two small images of the end-to-end
// tests, each written as an archive that containerd imports with
// `ctr -n k8s.io images import FILE`.
//
//	cd hack/tools && go run ./cmd/images --out ../../bin/images \
//	    --reroll-bin ../../bin/reroll --version v1.2.3 --revision $(git rev-parse HEAD)
//
// writes, into --out:
//
//	pause.tar       reroll.local/pause:1       the pod sandbox (cmd/pause)
//	echoconfig.tar  reroll.local/echoconfig:1  the test app (cmd/echoconfig)
//	reroll.tar      reroll.local/reroll:VERSION  from --reroll-bin
//
// The image format (manifests, configs, the OCI layout) is
// go-containerregistry's; this command only says what goes in each image.
// Images are reproducible: every timestamp is SOURCE_DATE_EPOCH, or 0 when
// it is unset, and pause and echoconfig are built with -trimpath and
// -buildvcs=false, so the same sources and Go give the same digests.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// main parses the command line, builds the images and prints one line
// per archive.
func main() {
	o, err := parseOptions(os.Args[1:], os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	built, err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
	for _, b := range built {
		fmt.Printf("%s\t%s\t%s\t%d bytes\n", b.ref, b.file, b.digest, b.size)
	}
}

// parseOptions reads the command line; sourceDateEpoch is the value of
// SOURCE_DATE_EPOCH (seconds since 1970), the reproducible-builds way of
// fixing timestamps.
func parseOptions(args []string, sourceDateEpoch string) (options, error) {
	var o options
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "", "directory to write the image archives into (required)")
	fs.StringVar(&o.rerollBin, "reroll-bin", "", "reroll's static linux binary, from `make build`; empty: no reroll image")
	fs.StringVar(&o.version, "version", "", "reroll's version: its image's tag and org.opencontainers.image.version (required with --reroll-bin)")
	fs.StringVar(&o.revision, "revision", "", "the source revision, for org.opencontainers.image.revision")
	fs.StringVar(&o.source, "source", "https://github.com/reroll/reroll", "the source repository, for org.opencontainers.image.source")
	fs.StringVar(&o.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to put into reroll's image; skipped when empty or missing")
	fs.StringVar(&o.toolsDir, "tools-dir", ".", "the hack/tools module, where cmd/pause and cmd/echoconfig are built")
	fs.StringVar(&o.pauseBin, "pause-bin", "", "a prebuilt pause binary; empty: built from --tools-dir")
	fs.StringVar(&o.echoconfigBin, "echoconfig-bin", "", "a prebuilt echoconfig binary; empty: built from --tools-dir")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "the images' architecture (GOARCH); their OS is linux")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.out == "" {
		return options{}, fmt.Errorf("--out is required")
	}
	if o.rerollBin != "" {
		if o.version == "" {
			return options{}, fmt.Errorf("--version is required with --reroll-bin")
		}
		// The version is a tag: fail before building anything.
		if _, err := name.NewTag(rerollRepo+":"+o.version, name.StrictValidation); err != nil {
			return options{}, fmt.Errorf("--version %q is not an image tag: %w", o.version, err)
		}
	}
	o.created = time.Unix(0, 0).UTC()
	if sourceDateEpoch != "" {
		secs, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
		if err != nil {
			return options{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		o.created = time.Unix(secs, 0).UTC()
	}
	return o, nil
}
