#!/usr/bin/env bash
# Builds a local Kubernetes control plane from Go modules:
#   etcd, kube-apiserver, kube-controller-manager and localcluster
# into BIN_DIR (default: hack/tools/bin).
#
# Usage: hack/build-control-plane.sh [BIN_DIR]
#        WITH_NODES=1 hack/build-control-plane.sh [BIN_DIR]
#
# WITH_NODES=1 also builds kube-scheduler and kwok, needed by
# `localcluster --with-nodes`, and kubelet, needed by
# `localcluster --real-node` (containerd, runc and the CNI plugins come from
# Debian: hack/install-node-deps.sh).
#
# Versions are pinned by hack/tools/go.mod (k8s.io/kubernetes, and kwok as a
# tool there: built against the same k8s.io modules, it shares their
# compiled packages with the control plane instead of compiling its own
# older copies: kwok took 163 s of a cold build before, 24 s after) and
# hack/tools/etcd/go.mod (go.etcd.io/etcd/server/v3), with committed go.sum
# files. Only the Go module proxy is needed. A cold build with WITH_NODES=1
# (empty module and build cache) took 524 s on 2 cores (2026-12-05: etcd 50 s,
# the Kubernetes binaries 449 s, kwok 24 s); with a warm Go build cache it
# takes a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${ROOT}/hack/tools"
BIN_DIR="${1:-${TOOLS}/bin}"
mkdir -p "${BIN_DIR}"
BIN_DIR="$(cd "${BIN_DIR}" && pwd)"
WITH_NODES="${WITH_NODES:-0}"

# Static binaries like the official Kubernetes release builds; no VCS stamping
# (the work tree may have no commits yet); never let a stray GOFLAGS from the
# environment (e.g. -mod=vendor) change what gets built.
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -mod=readonly"
export GOWORK=off

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1fs", e - s }'; }
log() { echo "build-control-plane: $*"; }

total_start="$(now)"
log "go: $(go version | cut -d' ' -f3-), GOMODCACHE=$(go env GOMODCACHE), bin dir: ${BIN_DIR}"

# etcd (own module: its dependency versions differ from Kubernetes').
start="$(now)"
etcd_version="$(cd "${TOOLS}/etcd" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
log "building etcd ${etcd_version} ..."
(cd "${TOOLS}/etcd" && go build -trimpath \
	-ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${etcd_version}" \
	-o "${BIN_DIR}/etcd" go.etcd.io/etcd/server/v3)
log "etcd built in $(elapsed "${start}")"

# kube-apiserver + kube-controller-manager (one go build: shared packages are
# compiled once). The -X flags make /version report the real release instead
# of v0.0.0-master; the build date is the module's release time so the link
# is reproducible and a warm rebuild does not relink.
start="$(now)"
kube_version="$(cd "${TOOLS}" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
kube_time="$(cd "${TOOLS}" && go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)"
kube_major="$(echo "${kube_version#v}" | cut -d. -f1)"
kube_minor="$(echo "${kube_version#v}" | cut -d. -f2)"
vpkg="k8s.io/component-base/version"
kube_ldflags="-s -w"
kube_ldflags+=" -X ${vpkg}.gitVersion=${kube_version}"
kube_ldflags+=" -X ${vpkg}.gitMajor=${kube_major}"
kube_ldflags+=" -X ${vpkg}.gitMinor=${kube_minor}"
kube_ldflags+=" -X ${vpkg}.gitCommit="
kube_ldflags+=" -X ${vpkg}.gitTreeState=clean"
kube_ldflags+=" -X ${vpkg}.buildDate=${kube_time:-1970-01-01T00:00:00Z}"
kube_cmds=(kube-apiserver kube-controller-manager)
if [[ "${WITH_NODES}" == 1 ]]; then
	# kubelet shares most of its packages with the others: built in the
	# same go build, they are compiled once.
	kube_cmds+=(kube-scheduler kubelet)
fi
log "building ${kube_cmds[*]} ${kube_version} (cold: ~10 min, ~3 GB RAM) ..."
(cd "${TOOLS}" && go build -trimpath -ldflags "${kube_ldflags}" -o "${BIN_DIR}/" \
	"${kube_cmds[@]/#/k8s.io/kubernetes/cmd/}")
log "${kube_cmds[*]} built in $(elapsed "${start}")"

if [[ "${WITH_NODES}" == 1 ]]; then
	start="$(now)"
	kwok_version="$(cd "${TOOLS}" && go list -m -f '{{.Version}}' sigs.k8s.io/kwok)"
	log "building kwok ${kwok_version} ..."
	(cd "${TOOLS}" && go build -trimpath \
		-ldflags "-s -w" \
		-o "${BIN_DIR}/kwok" sigs.k8s.io/kwok/cmd/kwok)
	log "kwok built in $(elapsed "${start}")"
fi

start="$(now)"
log "building localcluster ..."
(cd "${TOOLS}" && go build -trimpath -o "${BIN_DIR}/localcluster" ./cmd/localcluster)
log "localcluster built in $(elapsed "${start}")"

built=(etcd "${kube_cmds[@]}" localcluster)
if [[ "${WITH_NODES}" == 1 ]]; then
	built+=(kwok)
fi
log "done in $(elapsed "${total_start}"): ${built[*]} in ${BIN_DIR}"
