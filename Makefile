# reroll: `make run` runs the controller, `make test` runs every test.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin/reroll
# The local control plane (etcd, kube-apiserver, kube-controller-manager)
# is built from Go modules into this directory by hack/build-control-plane.sh.
TOOLS_BIN ?= $(CURDIR)/hack/tools/bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 30s
RUN_ARGS ?=

.PHONY: all build test unit lint fmt-check vet fuzz run control-plane clean

all: build

## build: the controller binary, version-stamped, in bin/
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/controller

## test: formatting, vet, staticcheck and the unit tests with -race
test: fmt-check vet lint unit

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

## lint: staticcheck at a pinned version (fetched through the module proxy)
lint:
	go run $(STATICCHECK) ./...

unit:
	go test -race -count=1 ./...

## fuzz: each fuzz target for FUZZTIME (the seed corpora also run in `make unit`)
fuzz:
	for target in FuzzParseNameList FuzzCalculateConsumption FuzzParseConsumedState; do \
		go test ./pkg/controller -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME); \
	done

## control-plane: build etcd, kube-apiserver, kube-controller-manager, localcluster
control-plane:
	hack/build-control-plane.sh $(TOOLS_BIN)

## run: the controller against $$KUBECONFIG, else against a local control plane
run: build
ifneq ($(strip $(KUBECONFIG)),)
	./$(BIN) --kubeconfig="$(KUBECONFIG)" $(RUN_ARGS)
else
	hack/build-control-plane.sh $(TOOLS_BIN)
	$(TOOLS_BIN)/localcluster --print-try-it -- ./$(BIN) --controller-namespace=default --v=2 $(RUN_ARGS)
endif

clean:
	rm -rf bin
