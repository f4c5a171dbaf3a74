package hyperbytedb_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/addons/sdk/sdktest"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestConformance runs the SDK's driver checks on the built driver against
// a real InfluxDB holding a dump of about 25 MiB: larger than the SDK's
// flow-control windows, so a cancelled backup is still running. Its
// Backup must count the dataset's points and series, and its Verify the
// same in the dump.
func TestConformance(t *testing.T) {
	influx := servers.StartInfluxDB(t)
	bin := filepath.Join(t.TempDir(), "hyperbytedb-driver")
	build := exec.Command("go", "build", "-o", bin, "./cmd/hyperbytedb-driver")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build driver: %v\n%s", err, out)
	}
	bulk := hyperbytedbtest.Bulk{DB: "conformance", N: 80000, Series: 40, Pad: 200}
	bulk.Write(t, hyperbytedbtest.Server{URL: influx.URL}, 0, bulk.N)

	request := func(params map[string]string) sdk.Request {
		params["url"] = influx.URL
		return sdk.Request{Target: sdk.Target{Kind: "Service", Name: "influxdb", Namespace: "db"}, Params: params, Component: "dump"}
	}
	sdktest.Conformance(t, bin, sdktest.Options{
		Backup:        &sdk.BackupRequest{Request: request(map[string]string{"databases": "conformance"})},
		FailingBackup: &sdk.BackupRequest{Request: request(map[string]string{"databases": "missing"})},
		Restore:       &sdk.RestoreRequest{Request: request(map[string]string{"mode": "replace"})},
		Restored: &sdk.Restored{
			ObjectKind: "databases", Objects: []string{bulk.DB}, Items: map[string]uint64{"points": uint64(bulk.N)},
		},
		// Backup counts, and Verify counts again, the dataset's points and series.
		Counts: sdk.Counts{"points": uint64(bulk.N), "series": uint64(bulk.Series)},
	})
}
