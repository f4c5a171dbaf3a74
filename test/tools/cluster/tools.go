//go:build tools

// Package tools pins the cluster add-ons test/cluster runs on the local node:
// CoreDNS (cluster DNS) and rancher's local-path-provisioner (the default
// StorageClass). They live apart from test/tools/kubernetes so their
// dependency graphs never pull the Kubernetes pins around.
package tools

import (
	_ "github.com/coredns/coredns"
	_ "github.com/rancher/local-path-provisioner"
)
