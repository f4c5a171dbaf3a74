# Keepsake: `make demo` runs the main job, `make test` runs every test.
# Both install what they need (Debian packages, pinned Go tools in ./bin)
# and are safe to run twice. `make help` lists every target.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
BIN := $(ROOT)/bin
export PATH := $(BIN):$(PATH)

# Tool versions are pinned in one place: test/tools/go.mod (small tools) and
# test/tools/kubernetes/go.mod (Kubernetes components, one version).
TOOLS_MOD := test/tools/go.mod test/tools/go.sum
K8S_MOD := test/tools/kubernetes/go.mod test/tools/kubernetes/go.sum
K8S_VERSION := $(shell awk '{for (i = 1; i < NF; i++) if ($$i == "k8s.io/kubernetes") print $$(i+1)}' test/tools/kubernetes/go.mod)
K8S_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION)))

# Debian packages the tests and the local cluster need.
DEBIAN_PACKAGES := etcd-server influxdb influxdb-client containerd runc \
	containernetworking-plugins iptables busybox-static postgresql protobuf-compiler curl \
	redis-server redis-tools
# Go tools built from test/tools into ./bin.
GO_TOOLS := controller-gen restic minio staticcheck protoc-gen-go protoc-gen-go-grpc
# Kubernetes components built from test/tools/kubernetes into ./bin.
K8S_TOOLS := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
# helm, built from its own tools module test/tools/helm (its k8s.io/* versions
# are not ours), with the version and Kubernetes version its release build sets.
HELM_MOD := test/tools/helm/go.mod test/tools/helm/go.sum
HELM_VERSION := $(shell awk '{for (i = 1; i < NF; i++) if ($$i == "helm.sh/helm/v3") print $$(i+1)}' test/tools/helm/go.mod)
HELM_K8S_MINOR := $(word 2,$(subst ., ,$(shell awk '$$1 == "k8s.io/client-go" {print $$2}' test/tools/helm/go.mod)))
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_K8S_MINOR) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_K8S_MINOR)
GO_TOOLS += helm
# promtool and prometheus, built from their own tools module
# test/tools/prometheus (Prometheus pins its own k8s.io/* versions): promtool
# checks and unit-tests the chart's alerts; the e2e's Prometheus scrapes the
# operator and evaluates them.
PROMETHEUS_MOD := test/tools/prometheus/go.mod test/tools/prometheus/go.sum
GO_TOOLS += promtool prometheus

# The local cluster's tools and targets; included before the rules below
# use CLUSTER_TOOLS (make expands prerequisites as it reads them).
include test/cluster/cluster.mk

GO_TEST_FLAGS ?= -count=1 -timeout 45m

# Go modules of their own inside the tree: the driver SDK and the addons
# built on it alone. `go <cmd> ./...` at the root does not enter them, so
# fmt, vet, lint and test run `go <cmd> ./...` in each of them too.
SDK_MODULE := github.com/keepsake-dev/keepsake/addons/sdk
ADDON_MODULES := addons/sdk addons/script addons/postgres
# in_modules runs a command in the root module, then in each addon module.
in_modules = for m in . $(ADDON_MODULES); do (cd $(ROOT)/$$m && $(1)); done

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 } \
		/^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: debian-packages $(addprefix $(BIN)/,controller-gen protoc-gen-go protoc-gen-go-grpc) ## Generate deepcopy code, CRDs (charts/keepsake/crds), the operator's RBAC (charts/keepsake/files) and the driver protocol's Go code.
	$(BIN)/controller-gen object paths=./apis/...
	$(BIN)/controller-gen crd paths=./apis/... output:crd:artifacts:config=charts/keepsake/crds
	$(BIN)/controller-gen rbac:roleName=keepsake-operator paths=./operator/... output:rbac:stdout > charts/keepsake/files/operator-role.yaml
	protoc --plugin=protoc-gen-go=$(BIN)/protoc-gen-go --plugin=protoc-gen-go-grpc=$(BIN)/protoc-gen-go-grpc \
		--proto_path=addons/sdk/proto driver.proto \
		--go_out=addons/sdk/proto --go_opt=paths=source_relative \
		--go-grpc_out=addons/sdk/proto --go-grpc_opt=paths=source_relative

GENERATED := ':(glob)apis/**/zz_generated.deepcopy.go' charts/keepsake/crds ':(glob)addons/sdk/proto/*.pb.go'
# The operator's ClusterRole rules, from the reconcilers' RBAC markers; the chart reads them.
GENERATED += charts/keepsake/files/operator-role.yaml

.PHONY: verify-generated
verify-generated: generate ## Fail when generated files differ from what is committed.
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "generated files are stale; run 'make generate' and commit:"; \
		git status --porcelain -- $(GENERATED); git diff --stat -- $(GENERATED); exit 1; \
	fi

.PHONY: fmt
fmt: ## Format the code.
	$(call in_modules,go fmt ./...)

.PHONY: vet
vet: ## Run go vet (root and addon modules).
	$(call in_modules,go vet ./...)

.PHONY: lint
lint: $(BIN)/staticcheck ## Run staticcheck and check gofmt.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(call in_modules,$(BIN)/staticcheck ./...)

.PHONY: build
build: ## Build the static binaries (keepsake, drivers) into ./bin.
	CGO_ENABLED=0 go build -o $(BIN)/ ./cmd/... ./addons/hyperbytedb/cmd/...
	cd addons/script && CGO_ENABLED=0 go build -o $(BIN)/ ./cmd/...
	cd addons/postgres && CGO_ENABLED=0 go build -o $(BIN)/ ./cmd/...

##@ Testing

.PHONY: test
test: tools build vet lint verify-generated verify-modules ## Run every test (installs what it needs first).
	$(call in_modules,go test $(GO_TEST_FLAGS) ./...)

.PHONY: test-unit
test-unit: ## Run the tests that need no server (go test -short).
	$(call in_modules,go test -short -count=1 ./...)

.PHONY: verify-modules
verify-modules: ## Fail when an addon module depends on a Keepsake module other than the SDK.
	@for m in $(ADDON_MODULES); do \
		own=$$(cd $$m && go list -m) && all=$$(cd $$m && go list -m all) || exit 1; \
		others=$$(echo "$$all" | awk '{print $$1}' | grep '^github.com/keepsake-dev/' \
			| grep -vx -e "$$own" -e '$(SDK_MODULE)' || true); \
		if [ -n "$$others" ]; then echo "$$m depends on Keepsake modules other than the SDK:" $$others; exit 1; fi; \
	done

.PHONY: bench
bench: tools build ## Run the benchmarks (ratios against baselines measured in the same run).
	go test -run '^$$' -bench . -benchtime 4x -timeout 60m ./repository/...
	go test -run '^$$' -bench BenchmarkDriver -benchtime 1x -timeout 60m ./test/bench/
	go test -run '^$$' -bench 'BenchmarkOperatorMemory|BenchmarkBackupSessionToJob' -benchtime 1x -timeout 60m ./test/bench/
	go test -run '^$$' -bench 'BenchmarkPhysicalVsLogical|BenchmarkPostgresBackup' -benchtime 1x -timeout 60m ./test/bench/

##@ Demo

.PHONY: demo
demo: tools build ## Bring up the local cluster, install Keepsake with Helm, back up, wipe, restore, verify.
	KEEPSAKE_DEMO=1 KEEPSAKE_CLUSTER_KEEP=1 go test -count=1 -v -timeout 40m -run '^TestDemo$$' ./test/demo/

##@ Tools

.PHONY: tools
tools: debian-packages $(addprefix $(BIN)/,$(GO_TOOLS) $(K8S_TOOLS) $(CLUSTER_TOOLS)) ## Install Debian packages and build pinned tools into ./bin.

.PHONY: debian-packages
debian-packages: ## Install the Debian packages Keepsake's tests need, if missing.
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq -o DPkg::Lock::Timeout=600; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
			--no-install-recommends $$missing; \
	fi

$(BIN)/controller-gen: $(TOOLS_MOD)
	cd test/tools && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen
$(BIN)/restic: $(TOOLS_MOD)
	cd test/tools && CGO_ENABLED=0 go build -ldflags "-s -w" -o $@ github.com/restic/restic/cmd/restic
$(BIN)/minio: $(TOOLS_MOD)
	cd test/tools && CGO_ENABLED=0 go build -ldflags "-s -w" -o $@ github.com/minio/minio
$(BIN)/staticcheck: $(TOOLS_MOD)
	cd test/tools && go build -o $@ honnef.co/go/tools/cmd/staticcheck
$(BIN)/protoc-gen-go: $(TOOLS_MOD)
	cd test/tools && go build -o $@ google.golang.org/protobuf/cmd/protoc-gen-go
$(BIN)/protoc-gen-go-grpc: $(TOOLS_MOD)
	cd test/tools && go build -o $@ google.golang.org/grpc/cmd/protoc-gen-go-grpc

$(BIN)/helm: $(HELM_MOD)
	cd test/tools/helm && CGO_ENABLED=0 go build -ldflags "$(HELM_LDFLAGS)" -o $@ helm.sh/helm/v3/cmd/helm

$(BIN)/promtool: $(PROMETHEUS_MOD)
	cd test/tools/prometheus && CGO_ENABLED=0 go build -ldflags "-s -w" -o $@ github.com/prometheus/prometheus/cmd/promtool
$(BIN)/prometheus: $(PROMETHEUS_MOD)
	cd test/tools/prometheus && CGO_ENABLED=0 go build -ldflags "-s -w" -o $@ github.com/prometheus/prometheus/cmd/prometheus

$(addprefix $(BIN)/,$(K8S_TOOLS)): $(K8S_MOD)
	cd test/tools/kubernetes && go build -ldflags "$(K8S_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/$(notdir $@)

.PHONY: clean
clean: ## Remove ./bin.
	rm -rf $(BIN)
