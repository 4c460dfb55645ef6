#!/usr/bin/env bash
# hack/krew.sh VERSION [OS/ARCH ...]: builds the kubectl-reroll release
# archives into bin/dist (default: linux and darwin, amd64 and arm64), writes
# bin/dist/reroll.yaml, the krew manifest for them (from
# hack/krew/reroll.yaml.tmpl), and checks it with krew's own tools: its
# manifest validation, and an install from the first archive into a
# throwaway krew root, whose kubectl-reroll must then run. Needs only the
# Go module proxy: krew is pinned below and built with go install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly KREW=sigs.k8s.io/krew
readonly KREW_VERSION=v0.4.3
version=${1:?usage: hack/krew.sh VERSION [OS/ARCH ...]}
shift
platforms=("$@")
[[ ${#platforms[@]} -gt 0 ]] || platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
dist=bin/dist
rm -rf "${dist}"
mkdir -p "${dist}"

entries=""
for p in "${platforms[@]}"; do
	os=${p%/*}
	arch=${p#*/}
	stage="${dist}/stage-${os}-${arch}"
	mkdir -p "${stage}"
	CGO_ENABLED=0 GOOS=${os} GOARCH=${arch} go build -trimpath -ldflags "-s -w -X main.version=${version}" \
		-o "${stage}/kubectl-reroll" ./cmd/kubectl-reroll
	cp cmd/kubectl-reroll/kubectl_complete-reroll "${stage}/"
	archive="kubectl-reroll_${os}_${arch}.tar.gz"
	tar -C "${stage}" -czf "${dist}/${archive}" kubectl-reroll kubectl_complete-reroll
	sum=$(sha256sum "${dist}/${archive}" | cut -d' ' -f1)
	entries+="  - selector:
      matchLabels:
        os: ${os}
        arch: ${arch}
    uri: https://github.com/reroll/reroll/releases/download/${version}/${archive}
    sha256: ${sum}
    bin: kubectl-reroll
    files:
      - from: kubectl-reroll
        to: .
      - from: kubectl_complete-reroll
        to: .
"
done
manifest="${dist}/reroll.yaml"
awk -v version="${version}" -v platforms="${entries%$'\n'}" \
	'{ gsub(/@VERSION@/, version); if ($0 == "@PLATFORMS@") print platforms; else print }' \
	hack/krew/reroll.yaml.tmpl >"${manifest}"

# Both of krew's tools in one go install: their packages compile once.
tools=$(mktemp -d)
trap 'rm -rf "${tools}"' EXIT
GOBIN="${tools}" go install "${KREW}/cmd/validate-krew-manifest@${KREW_VERSION}" "${KREW}/cmd/krew@${KREW_VERSION}"
"${tools}/validate-krew-manifest" -manifest "${manifest}" -skip-install
first=${platforms[0]}
if [[ ${first} == "$(go env GOOS)/$(go env GOARCH)" ]]; then
	root=$(mktemp -d)
	trap 'rm -rf "${root}" "${tools}"' EXIT
	KREW_ROOT="${root}" "${tools}/krew" install \
		--manifest="${manifest}" --archive="${dist}/kubectl-reroll_${first%/*}_${first#*/}.tar.gz"
	"${root}/bin/kubectl-reroll" version
fi
echo "krew manifest: ${manifest}"
