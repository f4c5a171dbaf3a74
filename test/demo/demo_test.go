package demo_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// DemoEnv, set to 1, runs TestDemo; `make demo` sets it. `make test` skips
// it: the e2e suite (test/e2e) runs the same steps and more.
const DemoEnv = "KEEPSAKE_DEMO"

// Namespace holds what the demo makes; it stays after the demo for a
// look around, and the next run starts it afresh.
const Namespace = "keepsake-demo"

// TestDemo is `make demo`: on the local cluster (started if needed), it
// installs Keepsake with Helm, seeds a HyperbyteDB-compatible database,
// backs it up, wipes it, restores it, checks every point came back, and
// prints a summary.
func TestDemo(t *testing.T) {
	if os.Getenv(DemoEnv) != "1" {
		t.Skipf("%s=1 runs the demo (make demo)", DemoEnv)
	}
	began := time.Now()
	c := cluster.Ensure(t)
	root, err := servers.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	stand, err := demo.NewStand(c.Config, root, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := stand.ResetNamespace(demo.Context(t, 5*time.Minute), Namespace); err != nil {
		t.Fatal(err)
	}
	e := demo.Setup(t, c, Namespace)

	// Every field type and awkward name, plus a bulk of metrics.
	ds := hyperbytedbtest.Mixed(time.Now())
	ds.Write(t, e.DB)
	bulk := hyperbytedbtest.Bulk{DB: "telemetry", N: 100_000, Series: 50}
	bulk.Write(t, e.DB, 0, bulk.N)
	want := hyperbytedbtest.ReadContents(t, e.DB)

	e.Apply(demo.BackupConfiguration, func(p *demo.Params) {
		p.Name, p.Schedule, p.AuthSecret, p.Directory, p.Retention = "metrics-backup", "0 */6 * * *", "metrics-auth", "metrics", "keep-two"
	})
	bks := e.WaitBackupSession(backupconfiguration.FirstSessionName("metrics-backup", "scheduled"), corev1alpha1.BackupSessionSucceeded)
	snapName := bks.Status.Snapshots[0].Name
	snap := e.Snapshots("metrics-backup-repo")[0]

	e.DropAll()
	e.Apply(demo.RestoreSession, func(p *demo.Params) {
		p.Name, p.Repository, p.Snapshot = "metrics-restore", "metrics-backup-repo", snapName
	})
	rs := e.WaitRestoreSession("metrics-restore", corev1alpha1.RestoreSucceeded)
	got := hyperbytedbtest.ReadContents(t, e.DB)
	if diff := hyperbytedbtest.Diff(want, got, 10); diff != "" {
		t.Fatalf("the restored database differs from the one backed up:\n%s", diff)
	}

	e.WaitRepositorySize("metrics-backup-repo") // the sync after the backup measures it
	if untidy := e.Untidy(); len(untidy) != 0 {
		t.Errorf("after a backup and a restore that went well, kubectl shows:\n%s", strings.Join(untidy, "\n"))
	}
	var ids []string
	for name, comp := range snap.Status.Components {
		ids = append(ids, name+"="+comp.ResticSnapshotID)
	}
	get, err := e.Kubectl(demo.Context(t, time.Minute), "get", "-n", Namespace, "-o", "wide",
		"backupstorage,repository,backupconfiguration,backupsession,snapshot,restoresession")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf(`
Keepsake demo: backup and restore verified in %s
  database   StatefulSet %s/metrics (InfluxDB 1.x, the HyperbyteDB stand-in): %d points in %d databases
  backup     BackupSession %s Succeeded in %s -> Snapshot %s, %s, restic %s
  restore    RestoreSession %s Succeeded in %s after every database was dropped: all %d points identical
  storage    s3://%s/%s (MinIO in namespace %s)

%s
Look around: bin/kubectl --kubeconfig %s get keepsake -n %s
Stop the cluster: make cluster-down
`, time.Since(began).Round(time.Second), Namespace, len(want.Points), len(want.Schema),
		bks.Name, bks.Status.Duration, snap.Name, snap.Status.Size, strings.Join(ids, " "),
		rs.Name, rs.Status.Duration, len(got.Points),
		e.Params.Bucket, e.Params.Prefix, cluster.ServersNamespace,
		get, c.Kubeconfig, Namespace)
}
