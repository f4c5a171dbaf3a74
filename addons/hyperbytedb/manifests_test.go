package hyperbytedb

import (
	"context"
	"os"
	"testing"

	"github.com/keepsake-dev/keepsake/test/addons"
)

// TestManifestsMatchDriver keeps the Addon and Functions in step with the
// driver, with the check every addon's manifests get (parameters and
// defaults, a usage each, the driver path, and every ${variable} of a
// Function's args a parameter of its task).
func TestManifestsMatchDriver(t *testing.T) {
	info, err := Driver{}.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	addons.CheckManifests(t, info, "hyperbytedb", "/usr/local/bin/hyperbytedb-driver",
		readFile(t, "manifests/addon.yaml"), readFile(t, "manifests/function.yaml"))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
