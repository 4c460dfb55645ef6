package main

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The images' names. Other code (the end-to-end tests, a node's sandbox
// image setting) refers to them: keep them as they are.
const (
	pauseRef      = "reroll.local/pause:1"
	echoconfigRef = "reroll.local/echoconfig:1"
	// rerollRepo is tagged with --version.
	rerollRepo = "reroll.local/reroll"
)

const (
	// nonRoot is distroless' nonroot user, the one the Dockerfile's image
	// runs as and the chart's securityContext asks for. Numeric, so that
	// the kubelet can check runAsNonRoot without reading /etc/passwd.
	nonRoot = "65532:65532"
	// pauseUser is the user of Kubernetes' own pause image.
	pauseUser = "65535:65535"
	// defaultPath is the PATH of distroless and Docker's default.
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// origin is where the images come from, for their OCI labels.
type origin struct {
	// source is the repository's URL.
	source string
	// revision is the commit built.
	revision string
}

// pauseSpec is the pod sandbox image, from the pause binary. The test
// images carry no revision, so that their digests change only when their
// programs do, not with every commit.
func pauseSpec(bin []byte, source string) imageSpec {
	return imageSpec{
		ref:     pauseRef,
		archive: "pause.tar",
		layers: []layerSpec{{
			createdBy: "images: /pause from hack/tools/cmd/pause",
			files:     []file{{name: "pause", mode: 0o755, data: bin}},
		}},
		config: v1.Config{
			Entrypoint: []string{"/pause"},
			User:       pauseUser,
			Labels: labels(origin{source: source}, "1", "reroll-pause",
				"reroll's pod sandbox image for tests: waits for SIGTERM and reaps zombie children"),
		},
	}
}

// echoconfigSpec is the end-to-end tests' app, from the echoconfig binary;
// like pause's, its labels have no revision.
func echoconfigSpec(bin []byte, source string) imageSpec {
	return imageSpec{
		ref:     echoconfigRef,
		archive: "echoconfig.tar",
		layers: []layerSpec{{
			createdBy: "images: /echoconfig from hack/tools/cmd/echoconfig",
			files:     []file{{name: "echoconfig", mode: 0o755, data: bin}},
		}},
		config: v1.Config{
			Entrypoint:   []string{"/echoconfig"},
			User:         nonRoot,
			Env:          []string{defaultPath},
			ExposedPorts: map[string]struct{}{"8080/tcp": {}},
			Labels: labels(origin{source: source}, "1", "reroll-echoconfig",
				"reroll's test app: prints the configuration it was started with"),
		},
	}
}

// rerollSpec is reroll's image, tagged version: what the Dockerfile's
// distroless static base gives reroll (root and nonroot in /etc/passwd,
// /tmp, the CA bundle when caCerts is not nil) in one layer, and the
// binary in the next, so that a new build changes only the top layer.
func rerollSpec(bin, caCerts []byte, version string, from origin) imageSpec {
	base := []file{
		{name: "etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "tmp", mode: 0o1777, dir: true},
	}
	if caCerts != nil {
		base = append(base, file{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caCerts})
	}
	return imageSpec{
		ref:     rerollRepo + ":" + version,
		archive: "reroll.tar",
		layers: []layerSpec{
			{createdBy: "images: /etc/passwd, /etc/group, /tmp and the CA bundle", files: base},
			{createdBy: "images: /reroll from make build", files: []file{{name: "reroll", mode: 0o755, data: bin}}},
		},
		config: v1.Config{
			Entrypoint: []string{"/reroll"},
			User:       nonRoot,
			Env:        []string{defaultPath},
			// The chart's metrics and health ports.
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "8081/tcp": {}},
			Labels: labels(from, version, "reroll",
				"Rolls Kubernetes workloads when the ConfigMap and Secret content they consume changes"),
		},
	}
}

// labels are an image's OCI labels (and annotations); empty values are
// left out.
func labels(from origin, version, title, description string) map[string]string {
	l := map[string]string{}
	for k, v := range map[string]string{
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.source":      from.source,
		"org.opencontainers.image.revision":    from.revision,
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": description,
	} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}
