//go:build tools

// Package tools pins the helm binary Keepsake builds into ./bin (it renders
// and lints charts/keepsake). The version lives in this module's go.mod;
// `make tools` builds it.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
