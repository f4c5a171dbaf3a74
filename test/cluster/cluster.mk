# Local cluster targets (test/cluster). Include from the top-level Makefile:
#   include test/cluster/cluster.mk
# Each binary is rebuilt only when its tools module's go.sum (or its sources) is newer.
K8S_VERSION := v1.36.3
K8S_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36
K8S_BINS := bin/kube-apiserver bin/kube-controller-manager bin/kube-scheduler bin/kubelet bin/kube-proxy bin/kubectl
CLUSTER_BINS := $(K8S_BINS) bin/coredns bin/local-path-provisioner bin/keepsake-images bin/pause bin/keepsake-cluster

$(K8S_BINS): bin/%: test/tools/kubernetes/go.sum
	go build -C test/tools/kubernetes -o $(CURDIR)/$@ -ldflags "$(K8S_LDFLAGS)" k8s.io/kubernetes/cmd/$*
bin/coredns: test/tools/cluster/go.sum
	CGO_ENABLED=0 go build -C test/tools/cluster -o $(CURDIR)/$@ -ldflags "-s -w" github.com/coredns/coredns
bin/local-path-provisioner: test/tools/cluster/go.sum
	CGO_ENABLED=0 go build -C test/tools/cluster -o $(CURDIR)/$@ -ldflags "-s -w" github.com/rancher/local-path-provisioner
bin/keepsake-images: $(wildcard test/images/*.go) test/images/go.sum
	CGO_ENABLED=0 go build -C test/images -o $(CURDIR)/$@ .
bin/pause: test/images/pause/main.go
	CGO_ENABLED=0 go build -C test/images -o $(CURDIR)/$@ -ldflags "-s -w" ./pause
bin/keepsake-cluster: $(wildcard test/cluster/*.go test/cluster/templates/* test/cluster/cmd/keepsake-cluster/*.go) go.sum
	go build -o $@ ./test/cluster/cmd/keepsake-cluster

.PHONY: cluster-tools cluster-up cluster-down cluster-status
cluster-tools: $(CLUSTER_BINS) ## Build the local cluster's binaries into ./bin (minio comes from `make tools`)
cluster-up: cluster-tools ## Start (or keep) the local cluster; prints the time to a Ready node
	bin/keepsake-cluster up
cluster-down: bin/keepsake-cluster ## Stop the local cluster and remove everything it holds on the machine
	bin/keepsake-cluster down
cluster-status: bin/keepsake-cluster ## Show what the local cluster runs and holds
	bin/keepsake-cluster status -v
