// Package servers starts the real servers Keepsake's integration tests run
// against (MinIO, InfluxDB, ...) and finds the pinned tools `make tools`
// builds into ./bin.
package servers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RepoRoot returns the directory holding Keepsake's go.mod, found by walking
// up from the working directory (go test runs each package in its own dir).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if isModuleRoot(dir) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of github.com/keepsake-dev/keepsake above the working directory")
		}
		dir = parent
	}
}

func isModuleRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && strings.HasPrefix(string(data), "module github.com/keepsake-dev/keepsake\n")
}

// Bin returns the path of a tool: ./bin/<name> when `make tools` built it,
// else <name> from PATH (Debian packages such as influxd and etcd). A missing
// tool fails the test: `make test` installs every tool first, so absence is a
// broken set-up, never a reason to skip.
func Bin(t testing.TB, name string) string {
	t.Helper()
	local := filepath.Join(RepoRoot(t), "bin", name)
	if _, err := os.Stat(local); err == nil {
		return local
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("tool %q is neither in ./bin nor on PATH: run `make tools`", name)
	return ""
}
