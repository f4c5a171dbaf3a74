package servers

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// APIServer is a real kube-apiserver and etcd started by envtest, with
// Keepsake's CRDs installed.
type APIServer struct {
	Env    *envtest.Environment
	Config *rest.Config
	assets string
}

// StartAPIServer starts kube-apiserver (./bin, built by `make tools`) and
// etcd (Debian etcd-server) and installs every CRD under charts/keepsake/crds.
// It is meant for TestMain; call Stop when done.
func StartAPIServer() (*APIServer, error) {
	assets, err := assetsDir()
	if err != nil {
		return nil, err
	}
	root, err := FindRepoRoot()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "charts", "keepsake", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = os.RemoveAll(assets)
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	return &APIServer{Env: env, Config: cfg, assets: assets}, nil
}

// Stop stops the servers and removes their files.
func (s *APIServer) Stop() error {
	defer os.RemoveAll(s.assets)
	return s.Env.Stop()
}

// assetsDir links the binaries envtest looks for into one temporary
// directory, as KUBEBUILDER_ASSETS would hold them.
func assetsDir() (string, error) {
	dir, err := os.MkdirTemp("", "keepsake-envtest-")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		p, err := FindBin(name)
		if err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}
