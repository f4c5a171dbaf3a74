//go:build tools

// Package tools pins the Kubernetes components Keepsake's tests run: one
// k8s.io/kubernetes version with every staging module at the matching v0.Y.Z
// (the upstream go.mod's replace directives only work inside its own repo).
// test/cluster starts a single-node cluster from these binaries.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
