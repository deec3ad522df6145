# Serin's build. Everything it needs is fetched through the Go module proxy.
SHELL := /usr/bin/env bash -o pipefail

CONTROLLER_TOOLS_VERSION := v0.23.0
CONTROLLER_GEN := go run sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
BIN_DIR := bin
GO_TEST_FLAGS ?= -race -count=1 -parallel 8 -timeout 30m
FUZZTIME ?= 10s
# Minimising an input that found new coverage has no bound of its own within
# -fuzztime: a large one stalled FuzzConvert until the deadline, which Go
# reports as a failure ("context deadline exceeded").
FUZZMINIMIZETIME ?= 1s

# The control-plane binaries are cached outside the repo (see e2e/testbin/build.sh).
TESTBIN = $(shell e2e/testbin/build.sh)

.PHONY: all build test e2e chaos demo bench generate verify fuzz testbin testdeps run

all: build

# The version and commit the binaries report (kubectl serin version, the
# controller's start-up log and serin_info).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/serin-dev/serin/pkg/buildinfo.Version=$(VERSION) -X github.com/serin-dev/serin/pkg/buildinfo.Commit=$(COMMIT)

## build: the controller, serin-tester and kubectl-serin binaries into bin/, with the version and commit
build:
	go build -ldflags "$(LDFLAGS)" -o $(BIN_DIR)/serin ./cmd/serin
	go build -ldflags "$(LDFLAGS)" -o $(BIN_DIR)/serin-tester ./cmd/serin-tester
	go build -ldflags "$(LDFLAGS)" -o $(BIN_DIR)/kubectl-serin ./cmd/kubectl-serin

## generate: deepcopy functions and CRD manifests (artifacts/crds, copied to charts/serin/crds) from pkg/apis
generate:
	$(CONTROLLER_GEN) object paths=./pkg/apis/...
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./pkg/apis/... output:crd:artifacts:config=artifacts/crds
	@mkdir -p charts/serin/crds && cp artifacts/crds/*.yaml charts/serin/crds/

## verify: generated files are current, code is gofmt'ed and vetted
verify: generate
	@git diff --exit-code -- pkg/apis artifacts/crds charts/serin/crds || { echo "generated files are stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- pkg/apis artifacts/crds charts/serin/crds)" || { git status --porcelain -- pkg/apis artifacts/crds charts/serin/crds; echo "untracked generated files: run 'make generate' and commit"; exit 1; }
	@unformatted="$$(gofmt -l cmd pkg e2e)"; test -z "$$unformatted" || { echo "gofmt needed: $$unformatted"; exit 1; }
	go vet ./...
	go vet -tags e2e ./e2e/...
	go vet -tags faultinject ./pkg/controller/
	go vet -tags chaos ./e2e/chaos/

## fuzz: every Go fuzz target of the repository (func FuzzXxx in a _test.go file under cmd, pkg or e2e), one after the other, each for FUZZTIME (default 10s); a failing input is saved under the package's testdata/fuzz (see e2e/fuzz/run.sh)
fuzz:
	@FUZZTIME=$(FUZZTIME) FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) e2e/fuzz/run.sh

## testbin: build (once) the local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok
testbin:
	@e2e/testbin/build.sh

## testdeps: Prometheus for the metric tests (Debian's package, installed when missing)
testdeps:
	@command -v prometheus >/dev/null 2>&1 || [ -n "$$SERIN_PROMETHEUS" ] || { \
		echo "installing Debian's prometheus package for the metric tests"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || \
		{ echo "missing prerequisite: prometheus (apt-get install prometheus failed; install it or set SERIN_PROMETHEUS to a prometheus binary)"; exit 1; }; }

## test: the whole module with the race detector, against the local control plane and a real Prometheus
test: testbin testdeps
	SERIN_TESTBIN_DIR="$(TESTBIN)" go test $(GO_TEST_FLAGS) ./...

## e2e: the end-to-end suite (build tag e2e): releases on every provider against the local cluster, a real Prometheus, serin-tester and the controller binary
e2e: testbin testdeps
	SERIN_TESTBIN_DIR="$(TESTBIN)" go test -tags e2e -count=1 -timeout 20m -parallel 32 $(E2E_FLAGS) ./e2e/suite/

## chaos: the fault suite (build tag chaos): the controller killed in every phase, leader failover and a paused leader, misbehaving webhooks, serin-tester, Prometheus, API server and etcd restarts and severed watches, each compared with the same release without faults
chaos: testbin testdeps
	SERIN_TESTBIN_DIR="$(TESTBIN)" go test -tags chaos -count=1 -timeout 25m $(CHAOS_FLAGS) ./e2e/chaos/

## demo: Serin's main job on one machine: starts a local cluster, Prometheus, serin-tester and the controller, promotes a good release, rolls back a bad one, and stops it all
demo: testbin testdeps
	@SERIN_TESTBIN_DIR="$(TESTBIN)" go run ./e2e/demo

## bench: the Go micro-benchmarks, then the scale benchmark: N Canaries (default 1000) initialised and released at once on the local cluster, with the controller built from the tree (BENCH_ARGS: -n, -profile bluegreen|istio, -compare BIN, -o FILE)
bench: testbin
	go test -run '^$$' -bench . -benchmem ./pkg/analysis/ ./pkg/checks/metrics/
	SERIN_TESTBIN_DIR="$(TESTBIN)" go run ./e2e/bench $(BENCH_ARGS)

## run: the controller against the current kubeconfig
run:
	go run ./cmd/serin $(RUN_ARGS)
