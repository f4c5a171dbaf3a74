package functions

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestVerifyCountsTheDump runs backup and verify as their Jobs do (the
// keepsake binary, the HyperbyteDB driver, InfluxDB, restic on MinIO and
// a kube-apiserver): the backup records the dump's points and series in
// the Snapshot, and verification counts the stored dump again with the
// driver. A Snapshot whose recorded count differs from the dump's, its
// bytes intact, fails verification naming both counts; without a driver
// only the bytes are verified, and the verdict says so.
func TestVerifyCountsTheDump(t *testing.T) {
	c, api := startKube(t)
	s := newStand(t)
	ds := hyperbytedbtest.Mixed(time.Now())
	ds.Write(t, s.api)
	primary := s.repo(t, "primary")
	createSnapshot(t, c, "bks-9-primary", "bks-9", "primary")
	params := s.file(t, "params.json", `{"url": "`+s.influx.URL+`", "authSecret": "influx-auth"}`)
	driver := filepath.Join(binDir, "hyperbytedb-driver")
	env := []string{"KUBECONFIG=" + kubeconfig(t, api)}
	common := []string{"--repository", specFlag(primary), "--restic", servers.Bin(t, "restic"), "--cache-dir", filepath.Join(s.dir, "cache"),
		"--report-to", "kubernetes", "--namespace", "default"}
	keepsake(t, 0, env, append([]string{"run", "backup", "--driver", driver, "--component", "dump", "--params-file", params,
		"--secret", "authSecret=" + s.auth, "--target-kind", "HyperbytedbCluster", "--target-name", "db", "--backup-session", "bks-9"}, common...)...)

	want := map[string]int64{"points": int64(len(ds.Points)), "series": int64(ds.Series())}
	if got := getSnapshot(t, c, "bks-9-primary").Status.Components["dump"].Counts; !maps.Equal(got, want) {
		t.Fatalf("the backup recorded counts %v, want %v", got, want)
	}
	verify := append([]string{"run", "verify", "--snapshot-object", "bks-9-primary", "--request", "r1", "--job", "verify-primary@1"}, common...)
	keepsake(t, 0, env, append(verify, "--driver", driver)...)
	assertVerification(t, c, "bks-9-primary", storagev1alpha1.Verified,
		fmt.Sprintf("read back whole and as large as recorded: dump (%s, %d points and %d series as recorded)",
			humanBytes(uint64(getSnapshot(t, c, "bks-9-primary").Status.Components["dump"].SizeBytes)), want["points"], want["series"]))

	// A verify Job without the driver checks the bytes and says so, and why.
	keepsake(t, 0, append(env, "KEEPSAKE_NO_DRIVER=Addon hyperbytedb not found"), verify...)
	assertVerification(t, c, "bks-9-primary", storagev1alpha1.Verified,
		"counts not checked: the verify Job has no driver (Addon hyperbytedb not found)")

	// The same bytes, but a recorded count the dump does not hold.
	setRecordedCount(t, c, "bks-9-primary", "points", want["points"]+1)
	keepsake(t, 0, env, append(verify, "--driver", driver)...)
	assertVerification(t, c, "bks-9-primary", storagev1alpha1.VerificationFailed, fmt.Sprintf(
		"1 of 1 component(s) did not read back as recorded: dump: counted %d points in the dump, the backup recorded %d", want["points"], want["points"]+1))
}

// setRecordedCount changes one count a backup recorded in Snapshot name.
func setRecordedCount(t *testing.T, c client.Client, name, unit string, n int64) {
	t.Helper()
	snap := getSnapshot(t, c, name)
	cs := snap.Status.Components["dump"]
	if cs.Counts == nil {
		cs.Counts = map[string]int64{}
	}
	cs.Counts[unit] = n
	snap.Status.Components["dump"] = cs
	if err := c.Status().Update(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCountsAnUnparsableDump: a component whose stored bytes are
// all there but are no dump fails verification with the driver's account
// of where it stops parsing; a driver that cannot count (no Verify)
// leaves the bytes to check, and the verdict says so; a driver that
// cannot be started is an error with no verdict.
func TestVerifyCountsAnUnparsableDump(t *testing.T) {
	c, _ := startKube(t)
	spec, repo := localRepo(t, "verified")
	data := "# DDL\nCREATE DATABASE \"db\"\n# DML\n# CONTEXT-DATABASE:db\ncpu v=1 1\ncpu v= 2\n"
	sum, err := repo.Backup(context.Background(), strings.NewReader(data), restic.BackupOptions{Filename: "dump"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	backedUpSnapshot(t, c, "garbled", sum.SnapshotID, int64(len(data)))
	setRecordedCount(t, c, "garbled", "points", 2)
	cfg := VerifyConfig{Repository: spec, Namespace: "default", Snapshot: "garbled", Client: c, Restic: servers.Bin(t, "restic"),
		CacheDir: t.TempDir(), Job: "verify-verified@now", Request: "r1", Driver: filepath.Join(binDir, "hyperbytedb-driver"), Log: newTestLog(t)}
	res, err := RunVerify(context.Background(), cfg)
	if err != nil || res.Verified {
		t.Fatalf("verify of an unparsable dump: %+v, %v", res, err)
	}
	assertVerification(t, c, "garbled", storagev1alpha1.VerificationFailed,
		"dump: read back failed: driver hyperbytedb-driver: verify: the dump does not parse after 1 points: line 6")

	cfg.Driver = filepath.Join(binDir, "script-driver")
	if res, err := RunVerify(context.Background(), cfg); err != nil || !res.Verified {
		t.Fatalf("verify with a driver that cannot count: %+v, %v", res, err)
	}
	assertVerification(t, c, "garbled", storagev1alpha1.Verified, "dump (74 B, counts not checked: driver script 0.1.0 cannot count a dump)")

	cfg.Driver = filepath.Join(t.TempDir(), "no-such-driver")
	if _, err := RunVerify(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "start the driver to count the dump") {
		t.Fatalf("verify with a missing driver = %v, want an error without a verdict", err)
	}
}
