# peergate — build, test and run targets. Every target that needs system
# packages or Go modules calls `deps` first, so a fresh Debian bookworm
# machine needs nothing but this repository, Go and root.
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
BIN := bin
# Debian packages the build, tests, demo and benchmarks use (vagrant only
# for test/package's `vagrant validate` of the Vagrantfile).
DEB_PKGS := libdpdk-dev dpdk dpdk-dev netcat-openbsd pkg-config gcc libpcap-dev iproute2 iputils-ping ethtool nftables tshark tcpreplay bird2 protobuf-compiler vagrant
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
TEST_TIMEOUT ?= 45m
# The DPDK binding is compiled in when libdpdk is installed (make deps
# installs it); without it the binaries build and explain what is missing.
GOTAGS ?= $(shell pkg-config --exists libdpdk 2>/dev/null && echo dpdk)

.PHONY: all deps build test test-short proto demo bench bench-quick bench-lpm fuzz vet fmt clean package testdata

all: build

# deps installs what is missing: Debian packages through apt-get (only when
# one is absent, so repeated runs are fast) and Go modules through the proxy.
deps:
	@./scripts/deps.sh $(DEB_PKGS)
	@$(GO) mod download

build: deps
	@mkdir -p $(BIN)
	$(GO) build -tags '$(GOTAGS)' -o $(BIN)/ ./cmd/...

# test runs the whole suite, then bench-quick. Tests that need root, DPDK or
# namespaces skip with a message when those are missing.
test: deps build
	$(GO) vet -tags '$(GOTAGS)' ./...
	PEERGATE_BIN=$(CURDIR)/$(BIN) $(GO) test -tags '$(GOTAGS)' -count=1 -timeout $(TEST_TIMEOUT) ./...
	@# The CI-sized benchmark run: fails on unexplained packet loss, asserts no speed.
	$(GO) run ./bench/cmd/harness -quick

test-short:
	$(GO) test -short -count=1 ./...

proto:
	@./scripts/deps.sh protobuf-compiler libprotobuf-dev
	GOBIN=$(HOME)/go/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(HOME)/go/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	protoc -I proto --go_out=paths=source_relative:proto --go-grpc_out=paths=source_relative:proto \
		$$(find proto -name '*.proto')

# testdata regenerates the replay pcaps and the compiled golden tables.
testdata:
	$(GO) generate ./dataplane/replay
	$(GO) test ./controlplane/compile -update

# bench runs every scenario of the harness against its reference and
# regenerates bench/README.md from bench/results/*.json (tens of minutes, root).
bench: deps
	$(GO) run ./bench/cmd/harness -log bench/results/bench.log

# bench-quick is the CI-sized run (under 5 minutes): the pipeline benchmark
# and a paced pcap replay through the af_packet path that fails on any packet
# neither received nor dropped with a reason. It asserts no speed.
bench-quick: deps
	$(GO) run ./bench/cmd/harness -quick

bench-lpm: deps
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=2s ./lpm/

# fuzz runs every fuzz target for FUZZTIME each: what comes from outside
# (manifests, packets, deltas and route blocks from the controlplane) and the structures
# under them.
FUZZTIME ?= 30s
fuzz: deps
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./controlplane/manifest/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./controlplane/manifest/
	$(GO) test -run '^$$' -fuzz FuzzParseRoutePrefix -fuzztime $(FUZZTIME) ./controlplane/compile/
	$(GO) test -run '^$$' -fuzz FuzzPipeline -fuzztime $(FUZZTIME) ./dataplane/pipeline/
	$(GO) test -run '^$$' -fuzz FuzzApplyDelta -fuzztime $(FUZZTIME) ./dataplane/fib/
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime $(FUZZTIME) ./proto/tables/routeblock/
	$(GO) test -run '^$$' -fuzz FuzzTranslate -fuzztime $(FUZZTIME) ./nat/
	$(GO) test -run '^$$' -fuzz FuzzTable -fuzztime $(FUZZTIME) ./lpm/

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# package builds dist/peergate_<version>_amd64.deb (binaries + systemd units).
package: build
	./scripts/package.sh

# demo: the main job. As root, builds the gateway and carries real traffic
# between hosts of two VPCs in network namespaces (see README).
demo: build
	@./scripts/deps.sh netcat-openbsd
	./scripts/demo.sh

clean:
	rm -rf $(BIN) dist
