# Local cluster targets (test/cluster), included by the top-level Makefile.
# The Kubernetes components come from its K8S_TOOLS rule; each binary here is
# rebuilt only when its tools module's go.sum (or its sources) is newer.
CLUSTER_TOOLS := coredns local-path-provisioner keepsake-images pause keepsake-cluster hyperbytedb-emulation

$(BIN)/coredns: test/tools/cluster/go.sum
	CGO_ENABLED=0 go build -C test/tools/cluster -o $@ -ldflags "-s -w" github.com/coredns/coredns
$(BIN)/local-path-provisioner: test/tools/cluster/go.sum
	CGO_ENABLED=0 go build -C test/tools/cluster -o $@ -ldflags "-s -w" github.com/rancher/local-path-provisioner
$(BIN)/keepsake-images: $(wildcard test/images/*.go) test/images/go.sum
	CGO_ENABLED=0 go build -C test/images -o $@ .
$(BIN)/pause: test/images/pause/main.go
	CGO_ENABLED=0 go build -C test/images -o $@ -ldflags "-s -w" ./pause
# The emulation of HyperbyteDB's backup and restore command line (not
# HyperbyteDB), the hyperbytedb of test/images' hyperbytedb-tool image.
$(BIN)/hyperbytedb-emulation: $(wildcard addons/hyperbytedb/hyperbytedbtest/cli/*.go addons/hyperbytedb/hyperbytedbtest/cli/hyperbytedb/*.go) go.sum
	CGO_ENABLED=0 go build -o $@ -ldflags "-s -w" ./addons/hyperbytedb/hyperbytedbtest/cli/hyperbytedb
$(BIN)/keepsake-cluster: $(wildcard test/cluster/*.go test/cluster/templates/* test/cluster/cmd/keepsake-cluster/*.go) go.sum
	go build -o $@ ./test/cluster/cmd/keepsake-cluster

.PHONY: cluster-tools cluster-up cluster-down cluster-status
cluster-tools: debian-packages $(addprefix $(BIN)/,$(K8S_TOOLS) $(CLUSTER_TOOLS) minio) ## Build the local cluster's binaries into ./bin.
cluster-up: cluster-tools ## Start (or keep) the local cluster; prints the time to a Ready node.
	$(BIN)/keepsake-cluster up
cluster-down: $(BIN)/keepsake-cluster ## Stop the local cluster and remove everything it holds on the machine.
	$(BIN)/keepsake-cluster down
cluster-status: $(BIN)/keepsake-cluster ## Show what the local cluster runs and holds.
	$(BIN)/keepsake-cluster status -v
