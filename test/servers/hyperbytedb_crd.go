package servers

import (
	"fmt"
	"path/filepath"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// InstallHyperbytedbCRD installs, on the API server of cfg, the
// HyperbytedbCluster CRD of test/servers/crds (a cut-down copy of the
// HyperbyteDB operator's, see the file's header) and waits until it is
// served. Tests that target a HyperbytedbCluster create its StatefulSet
// themselves: the HyperbyteDB operator does not run here.
func InstallHyperbytedbCRD(cfg *rest.Config) error {
	root, err := FindRepoRoot()
	if err != nil {
		return err
	}
	_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(root, "test", "servers", "crds")},
		ErrorIfPathMissing: true,
	})
	if err != nil {
		return fmt.Errorf("install HyperbytedbCluster CRD: %w", err)
	}
	return nil
}
