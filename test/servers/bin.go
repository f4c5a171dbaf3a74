// Package servers starts the real servers Keepsake's integration tests run
// against (kube-apiserver, MinIO, InfluxDB, ...) and finds the pinned tools
// `make tools` builds into ./bin.
package servers

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const modulePath = "github.com/keepsake-dev/keepsake"

// FindRepoRoot returns the directory holding Keepsake's go.mod, found by
// walking up from the working directory (go test runs each package in its
// own directory).
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of " + modulePath + " above the working directory")
		}
		dir = parent
	}
}

// RepoRoot is FindRepoRoot for tests: it fails the test on error.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// FindBin returns the path of a tool: ./bin/<name> when `make tools` built
// it, else <name> from PATH (Debian packages such as influxd and etcd).
func FindBin(name string) (string, error) {
	root, err := FindRepoRoot()
	if err != nil {
		return "", err
	}
	local := filepath.Join(root, "bin", name)
	if _, err := os.Stat(local); err == nil {
		return local, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("tool %q is neither in ./bin nor on PATH: run `make tools`", name)
}

// Bin is FindBin for tests. A missing tool fails the test: `make test`
// installs every tool first, so absence is a broken set-up, never a reason
// to skip.
func Bin(t testing.TB, name string) string {
	t.Helper()
	p, err := FindBin(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SkipIfShort skips an integration test in -short mode (`make test-unit`):
// it needs a real server, which -short promises not to start.
func SkipIfShort(t testing.TB, server string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test: starts %s; skipped in -short mode", server)
	}
}
