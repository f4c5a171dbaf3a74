//go:build tools

// Package tools pins the Go tools Keepsake builds into ./bin. Versions live in
// this module's go.mod; `make tools` builds each listed package.
package tools

import (
	_ "github.com/minio/minio"
	_ "github.com/restic/restic/cmd/restic"
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
	_ "honnef.co/go/tools/cmd/staticcheck"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
