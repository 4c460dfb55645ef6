# reroll: `make run` runs the controller, `make test` runs every test.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

# Evaluated once, when make starts: an edit during a long `make e2e` must
# not change the version between building the binary and packing its image.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
ifeq ($(origin REVISION),undefined)
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
endif
# The Dockerfile builds reroll with the same flags (checked by
# hack/tools/cmd/images' TestBuildFlagsMatchDockerfile).
LDFLAGS := -s -w -X main.version=$(VERSION)
# One set of build settings for every build, vet, lint and test, so that
# they share Go's build cache: a package compiled for one is not compiled
# again for the next, with other flags. Only the race detector (make race)
# needs cgo, and compiles every package again with it.
export CGO_ENABLED := 0
export GOFLAGS := -trimpath
BIN := bin/reroll
PLUGIN := bin/kubectl-reroll
# The local control plane (etcd, kube-apiserver, kube-controller-manager)
# is built from Go modules into this directory by hack/build-control-plane.sh.
TOOLS_BIN ?= $(CURDIR)/hack/tools/bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
KUSTOMIZE := sigs.k8s.io/kustomize/kustomize/v5@v5.8.2
HELM := helm.sh/helm/v4/cmd/helm@v4.3.1
# The real node's image archives (pause, echoconfig, reroll: `make
# images`), imported into its containerd.
IMAGES ?= $(CURDIR)/bin/images
# The pinned tools, installed once into $(TOOLS_BIN) and run from there:
# `go run pkg@version` links the tool again at every call.
HELM_BIN := $(TOOLS_BIN)/helm
KUSTOMIZE_BIN := $(TOOLS_BIN)/kustomize
STATICCHECK_BIN := $(TOOLS_BIN)/staticcheck
FUZZTIME ?= 30s
SCALE ?= 1.0
RUN_ARGS ?=

.PHONY: flags-doc kustomize staticcheck node-deps krew-check install-plugin bench bench-plots promcheck all build test unit race e2e lint fmt-check vet shellcheck manifests-check chart-check helm fuzz run control-plane image images clean

all: build

## build: the controller and the kubectl plugin, version-stamped, in bin/
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/controller
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(PLUGIN) ./cmd/kubectl-reroll

## install-plugin: kubectl-reroll on the PATH, so that `kubectl reroll` works
install-plugin: build
	install -m 0755 $(PLUGIN) "$$(go env GOPATH)/bin/kubectl-reroll"
	install -m 0755 cmd/kubectl-reroll/kubectl_complete-reroll "$$(go env GOPATH)/bin/kubectl_complete-reroll"

## test: formatting, vet, staticcheck, the unit tests, and the end-to-end
## suite on a real control plane (built on first use: 524 s of a cold run
## measured at 31 min 38 s, docs/development.md). The race detector is
## `make race`: it compiles every package again with cgo and -race (the
## unit tests took 335 s of a cold run with it, 70 s without), which the
## 35-minute budget of `make test` has no room for.
test: fmt-check vet lint shellcheck manifests-check chart-check krew-check unit tools-test e2e

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	go vet -tags e2e ./...

## shellcheck: the shell scripts (hack/kind.sh cannot run here: no Docker)
shellcheck:
	command -v shellcheck >/dev/null || { apt-get update -qq && apt-get install -y -qq shellcheck; }
	shellcheck hack/*.sh .ci/run cmd/kubectl-reroll/kubectl_complete-reroll

## manifests-check: both kustomizations build (e2e applies them to a real API server)
manifests-check: kustomize
	$(KUSTOMIZE_BIN) build manifests >/dev/null
	$(KUSTOMIZE_BIN) build manifests/overlays/namespaced >/dev/null
	$(KUSTOMIZE_BIN) build manifests/overlays/argo-rollouts | grep -q -- '--kinds=deployments,statefulsets,daemonsets,cronjobs,rollouts'

## chart-check: helm lint and helm template of charts/reroll, with the
## default and the namespace-scoped values (e2e installs it), and with the
## Grafana dashboard and the PrometheusRule on (promcheck tests their PromQL)
chart-check: helm kustomize
	$(HELM_BIN) lint --strict charts/reroll
	$(HELM_BIN) lint --strict charts/reroll -f charts/reroll/ci/namespaced-values.yaml
	$(HELM_BIN) template reroll charts/reroll --namespace reroll-system >/dev/null
	$(HELM_BIN) template reroll charts/reroll --namespace reroll-system -f charts/reroll/ci/namespaced-values.yaml >/dev/null
	$(HELM_BIN) template reroll charts/reroll --namespace reroll-system --set 'kinds={deployments,rollouts}' | grep -q 'apiGroups: \[argoproj.io\]'
	$(HELM_BIN) template reroll charts/reroll --namespace reroll-system --set 'kinds={deployments,jobs}' | grep -q 'verbs: \[get, list, watch, patch, create, delete\]'
	$(KUSTOMIZE_BIN) build manifests/overlays/jobs | grep -q -- '--kinds=deployments,statefulsets,daemonsets,cronjobs,jobs'
	$(HELM_BIN) template reroll charts/reroll --namespace reroll-system --set ignoreSecrets=true | grep -q 'resources: \[configmaps\]'
	$(HELM_BIN) template reroll charts/reroll --namespace reroll-system --set secretsStoreCSI=true | grep -q 'resources: \[secretproviderclasspodstatuses\]'
	$(KUSTOMIZE_BIN) build manifests/overlays/secrets-store-csi | grep -q -- '--secrets-store-csi'
	out="$$($(HELM_BIN) template reroll charts/reroll --namespace reroll-system --set 'watchNamespaces={a,b}')"; \
	grep -q -- '--namespaces=a,b' <<<"$$out" && ! grep -q 'kind: ClusterRole' <<<"$$out" || { echo "chart-check: watchNamespaces must render Roles only and --namespaces"; exit 1; }
	$(HELM_BIN) template reroll charts/reroll --namespace reroll-system --set 'namespaces=a\,b' | grep -q -- '--namespaces=a,b'
	$(HELM_BIN) template reroll charts/reroll --namespace reroll-system --set ignoreCronJobs=true | grep -q -- '--kinds=deployments,statefulsets,daemonsets$$'
	$(HELM_BIN) template reroll charts/reroll --namespace reroll-system --set isArgoRollouts=true | grep -q 'apiGroups: \[argoproj.io\]'
	! $(HELM_BIN) template reroll charts/reroll --set 'watchNamespaces={a}' --set watchNamespace=b >/dev/null 2>&1
	$(HELM_BIN) lint --strict charts/reroll --set dashboard.enabled=true,prometheusRule.enabled=true
	out="$$($(HELM_BIN) template reroll charts/reroll --namespace reroll-system --set dashboard.enabled=true,prometheusRule.enabled=true)"; \
	for want in 'grafana_dashboard: "1"' '"title": "Held rolls, by reason"' '"title": "Bake: workloads baking, and bake failures by kind"' \
		'expr: absent(reroll_leader{namespace="reroll-system"})' 'docs/alerts.md#rerollchangehalted' 'docs/alerts.md#rerollbakefailed'; do \
		grep -qF -- "$$want" <<<"$$out" || { echo "chart-check: the dashboard and rules render without $$want"; exit 1; }; \
	done

## krew-check: the krew manifest of the plugin's release archives, built for
## this machine's platform and checked with krew's own validation and an
## offline install (hack/krew.sh; `hack/krew.sh VERSION` builds every platform)
krew-check:
	hack/krew.sh v0.0.0-check "$$(go env GOOS)/$$(go env GOARCH)"

## flags-doc: rewrite docs/flags.md from the flag table (cmd/controller/flags.go);
## `make unit` fails while the two differ
flags-doc:
	go test ./cmd/controller -run '^TestFlagsReference$$' -count=1 -update

## helm: the pinned Helm binary, for the e2e suite
helm:
	GOBIN=$(TOOLS_BIN) go install $(HELM)

## kustomize, staticcheck: the pinned tools, in $(TOOLS_BIN)
kustomize:
	GOBIN=$(TOOLS_BIN) go install $(KUSTOMIZE)
staticcheck:
	GOBIN=$(TOOLS_BIN) go install $(STATICCHECK)

## promcheck: hack/tools/cmd/promcheck, which lists the metrics the chart's
## dashboard and alerts use, for the e2e suite (TestObservabilityMetricsExist)
promcheck:
	cd hack/tools && go build -o $(TOOLS_BIN)/promcheck ./cmd/promcheck

## bench: the cluster-scale benchmarks (docs/benchmarks.md), then their
## plots (bench-plots); SCALE=0.1 for a quick run
bench: build control-plane
	cd hack/tools && go run ./cmd/bench --bin-dir=$(TOOLS_BIN) --controller=$(CURDIR)/$(BIN) --plugin=$(CURDIR)/$(PLUGIN) --scale=$(SCALE) --out=$(CURDIR)/bench/results
	$(MAKE) bench-plots

## bench-plots: redraw docs/img/*.png from the results in bench/results,
## running nothing
bench-plots:
	cd hack/tools && go run ./cmd/plot --results=$(CURDIR)/bench/results --out=$(CURDIR)/docs/img

## image: the container image, where Docker exists
image:
	docker build --build-arg VERSION=$(VERSION) -t reroll:$(VERSION) .

## images: without Docker, reroll's image (reroll.local/reroll:$(VERSION))
## and the e2e tests' reroll.local/pause:1 and reroll.local/echoconfig:1,
## as OCI archives in bin/images/ for `ctr -n k8s.io images import FILE`
## (hack/tools/cmd/images; set SOURCE_DATE_EPOCH to date them, else 1970)
images: build
	cd hack/tools && go build -o $(TOOLS_BIN)/images ./cmd/images
	$(TOOLS_BIN)/images --out bin/images --tools-dir hack/tools --reroll-bin $(BIN) \
		--version $(VERSION) --revision $(REVISION) --source https://github.com/reroll/reroll

## lint: hack/check-tree.sh (no tracked file over 1 MiB, no tracked executable
## that is not a #! script), staticcheck at a pinned version (fetched through
## the module proxy), and filedeps: the files of a package depend on each
## other one way only (no cycle of any length), and no function is over 60
## lines without a reason in its comment
lint: staticcheck
	hack/check-tree.sh
	$(STATICCHECK_BIN) -tags e2e ./...
	cd hack/tools && $(STATICCHECK_BIN) ./...
	cd hack/tools && go run ./cmd/filedeps -dir=$(CURDIR) ./...

unit:
	go test -count=1 ./...

## race: the unit tests under the race detector
race:
	CGO_ENABLED=1 go test -race -count=1 ./...

## tools-test: the hack/tools module's tests: the local control plane's, and
## promcheck's (the chart's PromQL parses, each alert fires and stays quiet
## in Prometheus' rule engine), which render the chart with the pinned Helm.
## smoke runs alone, after the others: its real node test compares the
## host before and after, which no other test may change meanwhile (the
## images tool's REROLL_IMAGES_CONTAINERD=1 test runs a containerd on it)
tools-test: control-plane helm node-deps images
	cd hack/tools && go vet ./... && REROLL_BIN_DIR=$(TOOLS_BIN) go test -count=1 $$(go list ./... | grep -v '/smoke$$') && \
		REROLL_BIN_DIR=$(TOOLS_BIN) REROLL_IMAGES_DIR=$(IMAGES) go test -count=1 ./smoke

## e2e: the end-to-end suite (test/e2e) against a local control plane
# -parallel 4: the tests wait on the cluster far more than they compute, so
# twice the default (GOMAXPROCS) parallel tests finish the suite sooner.
E2E_FLAGS ?= -v -parallel 4
e2e: build control-plane helm promcheck node-deps images
	REROLL_E2E_BIN_DIR=$(TOOLS_BIN) REROLL_E2E_CONTROLLER=$(CURDIR)/$(BIN) REROLL_E2E_PLUGIN=$(CURDIR)/$(PLUGIN) REROLL_E2E_IMAGES=$(IMAGES) \
		REROLL_E2E_REROLL_IMAGE=reroll.local/reroll:$(VERSION) \
		go test -tags e2e -count=1 -timeout 30m $(E2E_FLAGS) ./test/e2e/

## fuzz: each fuzz target for FUZZTIME (the seed corpora also run in `make unit`)
fuzz:
	for target in FuzzParseNameList FuzzCalculateConsumption FuzzParseConsumedState; do \
		go test ./pkg/plan -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME); \
	done
	for target in FuzzParseExtraKinds FuzzCachedConsumption; do \
		go test ./pkg/controller -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME); \
	done

## control-plane: build etcd, kube-apiserver, kube-controller-manager,
## kube-scheduler, kwok, kubelet and localcluster (the e2e suite runs with
## kwok's node, so that rollouts complete, and a real node)
control-plane:
	WITH_NODES=1 hack/build-control-plane.sh $(TOOLS_BIN)

## node-deps: what the real node runs beside kubelet (containerd, runc, the
## CNI plugins), from Debian with apt when missing. Where that cannot be
## done (not root), the script says so in one line and localcluster then
## says why the real node is unavailable, and the tests that need it fail.
node-deps:
	hack/install-node-deps.sh || true

## run: the controller against $$KUBECONFIG, else against a local control plane
## with a real node, where the example's pods run (client-go reads
## $$KUBECONFIG itself, path lists included); where the node cannot start,
## localcluster says why in one line and falls back to kwok's fake node
run: build
ifneq ($(strip $(KUBECONFIG)),)
	./$(BIN) --controller-namespace=default --v=2 $(RUN_ARGS)
else
	$(MAKE) control-plane node-deps images
	$(TOOLS_BIN)/localcluster --print-try-it --real-node --kwok-fallback --images=$(IMAGES) -- ./$(BIN) --controller-namespace=default --v=2 $(RUN_ARGS)
endif

clean:
	rm -rf bin
