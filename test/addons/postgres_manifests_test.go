package addons

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/sdk/sdktest"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestPostgresManifestsMatchDriver keeps the Addon and Functions in step
// with the built driver's Info (CheckManifests).
func TestPostgresManifestsMatchDriver(t *testing.T) {
	d := sdktest.Start(t, build(t, "addons/postgres", "./cmd/postgres-driver", "postgres-driver"))
	info, err := d.Client.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(servers.RepoRoot(t), "addons", "postgres", "manifests")
	CheckManifests(t, info, "postgres", "/usr/local/bin/postgres-driver",
		readManifest(t, dir, "addon.yaml"), readManifest(t, dir, "function.yaml"))
}

func readManifest(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
