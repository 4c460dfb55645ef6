#!/usr/bin/env bash
# Try reroll on a laptop with Docker and kind:
#   hack/kind.sh        create (or reuse) a kind cluster, build and load the
#                       image, apply manifests/, wait for the rollout, and run
#                       a smoke check that prints PASS or FAIL
#   hack/kind.sh down   delete the cluster
# Untested in reroll's CI, which has no Docker; it is shellchecked there.
set -euo pipefail

CLUSTER="${KIND_CLUSTER:-reroll}"
IMAGE="${IMAGE:-reroll:dev}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SMOKE_NS="reroll-smoke"

log() { echo "kind.sh: $*"; }
need() { command -v "$1" >/dev/null || { log "$1 is required"; exit 1; }; }

if [[ "${1:-up}" == "down" ]]; then
	need kind
	kind delete cluster --name "${CLUSTER}"
	exit 0
fi

need docker
need kind
need kubectl

if kind get clusters | grep -qx "${CLUSTER}"; then
	log "reusing kind cluster ${CLUSTER}"
else
	kind create cluster --name "${CLUSTER}" --wait 120s
fi
kubectl config use-context "kind-${CLUSTER}" >/dev/null

version="$(git -C "${ROOT}" describe --tags --always --dirty 2>/dev/null || echo dev)"
log "building ${IMAGE} (${version})"
docker build --build-arg "VERSION=${version}" -t "${IMAGE}" "${ROOT}"
kind load docker-image "${IMAGE}" --name "${CLUSTER}"

log "applying manifests/"
kubectl apply -k "${ROOT}/manifests"
kubectl -n reroll-system rollout status deployment/reroll --timeout=180s

log "smoke check in namespace ${SMOKE_NS}"
kubectl create namespace "${SMOKE_NS}" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "${SMOKE_NS}" apply -f "${ROOT}/examples/app.yaml"
kubectl -n "${SMOKE_NS}" rollout status deployment/web --timeout=180s

adopted=""
for _ in $(seq 60); do
	adopted="$(kubectl -n "${SMOKE_NS}" get deployment web -o jsonpath='{.metadata.annotations.reroll\.dev/consumed}')"
	[[ -n "${adopted}" ]] && break
	sleep 1
done
if [[ -z "${adopted}" ]]; then
	log "FAIL: reroll did not adopt deployment/web"
	exit 1
fi

before="$(kubectl -n "${SMOKE_NS}" get rs -l app=web -o name | wc -l)"
kubectl -n "${SMOKE_NS}" patch configmap web-config --type merge -p "{\"data\":{\"LOG_LEVEL\":\"debug-$(date +%s)\"}}"
for _ in $(seq 60); do
	after="$(kubectl -n "${SMOKE_NS}" get rs -l app=web -o name | wc -l)"
	if (( after > before )); then
		log "PASS: the ConfigMap change rolled deployment/web (${before} -> ${after} ReplicaSets)"
		exit 0
	fi
	sleep 1
done
log "FAIL: no new ReplicaSet within 60s of the ConfigMap change"
kubectl -n reroll-system logs deployment/reroll --tail=50 || true
exit 1
