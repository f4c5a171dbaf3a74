package functions

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// Tests of the Kubernetes reporters on a real kube-apiserver, where the
// CRDs' schemas and the status subresource judge every patch.

// startKube starts a kube-apiserver with Keepsake's CRDs and returns a
// client and its config.
func startKube(t *testing.T) (client.Client, *servers.APIServer) {
	t.Helper()
	servers.SkipIfShort(t, "kube-apiserver")
	api, err := servers.StartAPIServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Stop() })
	c, err := newClientFor(api.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c, api
}

// createSnapshot creates the Snapshot the operator makes for a
// BackupSession and repository.
func createSnapshot(t *testing.T, c client.Client, name, session, repository string) *storagev1alpha1.Snapshot {
	t.Helper()
	snap := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{corev1alpha1.LabelBackupSession: session}},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: repository, BackupSession: session},
	}
	if err := c.Create(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

// createRestoreSession creates RestoreSession name in namespace default,
// restoring the hyperbytedb addon's logical-restore from repository.
func createRestoreSession(t *testing.T, c client.Client, name, repository string) *corev1alpha1.RestoreSession {
	t.Helper()
	rs := &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     storagev1alpha1.TypedObjectReference{Kind: "HyperbytedbCluster", Name: "db"},
			DataSource: corev1alpha1.RestoreDataSource{Repository: storagev1alpha1.ObjectReference{Name: repository}},
			Addon:      corev1alpha1.AddonInfo{Name: "hyperbytedb", Tasks: []corev1alpha1.TaskReference{{Name: "logical-restore"}}},
		},
	}
	if err := c.Create(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

func getSnapshot(t *testing.T, c client.Client, name string) *storagev1alpha1.Snapshot {
	t.Helper()
	snap := &storagev1alpha1.Snapshot{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestSnapshotReporter(t *testing.T) {
	c, _ := startKube(t)
	ctx := context.Background()
	createSnapshot(t, c, "bks-1-primary", "bks-1", "primary")
	createSnapshot(t, c, "bks-1-offsite", "bks-1", "offsite")
	createSnapshot(t, c, "bks-0-primary", "bks-0", "primary")
	rep := NewSnapshotReporter(c, "default", "bks-1")

	ok := ComponentResult{Operation: "backup", Repository: "primary", Component: "dump", Driver: "hyperbytedb 0.1.0",
		Phase: PhaseSucceeded, SnapshotID: "4f1e2d", Size: 1258291, DataAdded: 2048, Duration: Duration(3 * time.Second),
		Counts: map[string]uint64{"points": 80000, "series": 40}}
	if err := rep.Component(ctx, ok); err != nil {
		t.Fatal(err)
	}
	snap := getSnapshot(t, c, "bks-1-primary")
	wantDump := storagev1alpha1.ComponentStatus{Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: "4f1e2d",
		Path: "/dump", Size: "1.2 MiB", SizeBytes: 1258291, DataAdded: "2.0 KiB", Duration: "3s", Driver: "hyperbytedb 0.1.0",
		Counts: map[string]int64{"points": 80000, "series": 40}}
	assertSnapshot(t, snap, storagev1alpha1.SnapshotSucceeded, 1, 1258291, metav1.ConditionTrue, storagev1alpha1.ReasonBackupSucceeded)
	if got := withoutProgress(snap.Status.Components["dump"]); !reflect.DeepEqual(got, wantDump) {
		t.Fatalf("component dump:\n got %+v\nwant %+v", got, wantDump)
	}
	// Once done, the progress is the total, at the average rate.
	wantDone := storagev1alpha1.TransferProgress{BytesDone: 1258291, Done: "1.2 MiB", BytesPerSecond: 419430, Rate: "410 KiB/s",
		TotalBytes: 1258291, Total: "1.2 MiB"}
	assertProgress(t, "component dump", snap.Status.Components["dump"].Progress, wantDone)
	assertProgress(t, "Snapshot", snap.Status.Progress, wantDone)

	failed := ComponentResult{Operation: "backup", Repository: "offsite", Component: "dump", Driver: "hyperbytedb 0.1.0",
		Phase: PhaseFailed, Error: "restic backup s3:x: exit code 1: Fatal: unable to save snapshot", FailedIn: FailedInRepository,
		Duration: Duration(1500 * time.Millisecond)}
	if err := rep.Component(ctx, failed); err != nil {
		t.Fatal(err)
	}
	snap = getSnapshot(t, c, "bks-1-offsite")
	assertSnapshot(t, snap, storagev1alpha1.SnapshotFailed, 1, 0, metav1.ConditionFalse, storagev1alpha1.ReasonUploadFailed)
	wantFailed := storagev1alpha1.ComponentStatus{Phase: storagev1alpha1.ComponentFailed, Duration: "1.5s",
		Error: failed.Error, Driver: "hyperbytedb 0.1.0"}
	if got := snap.Status.Components["dump"]; !reflect.DeepEqual(got, wantFailed) {
		t.Fatalf("failed component:\n got %+v\nwant %+v", got, wantFailed)
	}
	if cond := meta.FindStatusCondition(snap.Status.Conditions, storagev1alpha1.ConditionBackupCompleted); cond.Message != "dump: "+failed.Error {
		t.Fatalf("condition message %q", cond.Message)
	}

	// A second component: Running while it streams, then its driver fails.
	rep.Progress(ctx, Progress{Operation: "backup", Repository: "primary", Component: "wal", Bytes: 10 << 20, Elapsed: Duration(2 * time.Second)})
	waitFor(t, "component wal Running", func() bool {
		return getSnapshot(t, c, "bks-1-primary").Status.Components["wal"].Phase == storagev1alpha1.ComponentRunning
	})
	// No parent: no total. The sum has dump's bytes too, and wal's rate
	// alone, the one still running; its total is unknown as wal's is.
	snap = getSnapshot(t, c, "bks-1-primary")
	assertProgress(t, "component wal", snap.Status.Components["wal"].Progress,
		storagev1alpha1.TransferProgress{BytesDone: 10 << 20, Done: "10 MiB", BytesPerSecond: 5 << 20, Rate: "5.0 MiB/s"})
	assertProgress(t, "running Snapshot", snap.Status.Progress,
		storagev1alpha1.TransferProgress{BytesDone: 1258291 + 10<<20, Done: "11 MiB", BytesPerSecond: 5 << 20, Rate: "5.0 MiB/s"})
	walFailed := ComponentResult{Operation: "backup", Repository: "primary", Component: "wal", Phase: PhaseFailed,
		Error: "driver: dump: connection refused", FailedIn: FailedInDriver}
	if err := rep.Component(ctx, walFailed); err != nil {
		t.Fatal(err)
	}
	snap = getSnapshot(t, c, "bks-1-primary")
	assertSnapshot(t, snap, storagev1alpha1.SnapshotFailed, 2, 1258291, metav1.ConditionFalse, storagev1alpha1.ReasonDumpFailed)
	if !reflect.DeepEqual(withoutProgress(snap.Status.Components["dump"]), wantDump) || snap.Status.Components["wal"].Phase != storagev1alpha1.ComponentFailed {
		t.Fatalf("components after the second: %+v", snap.Status.Components)
	}

	if other := getSnapshot(t, c, "bks-0-primary"); other.Status.Phase != "" || len(other.Status.Components) != 0 {
		t.Fatalf("another session's Snapshot was written: %+v", other.Status)
	}
	err := NewSnapshotReporter(c, "default", "bks-9").Component(ctx, ok)
	if err == nil || !strings.Contains(err.Error(), "no Snapshot in namespace default has label core.keepsake.dev/backup-session=bks-9 and repository primary") {
		t.Fatalf("report to a missing Snapshot: %v", err)
	}
}

// A backup's total is not known before it ends: while it runs, the
// parent Snapshot's size of the component stands in, marked an estimate.
func TestSnapshotProgressEstimate(t *testing.T) {
	c, _ := startKube(t)
	ctx := context.Background()
	createSnapshot(t, c, "bks-1-primary", "bks-1", "primary")
	if err := NewSnapshotReporter(c, "default", "bks-1").Component(ctx, ComponentResult{Operation: "backup", Repository: "primary",
		Component: "dump", Phase: PhaseSucceeded, SnapshotID: "4f1e2d", Size: 3 << 30, Duration: Duration(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	snap := createSnapshot(t, c, "bks-2-primary", "bks-2", "primary")
	snap.Spec.Parent = "bks-1-primary"
	if err := c.Update(ctx, snap); err != nil {
		t.Fatal(err)
	}
	rep := NewSnapshotReporter(c, "default", "bks-2")
	rep.Progress(ctx, Progress{Operation: "backup", Repository: "primary", Component: "dump", Bytes: 1 << 30, Elapsed: Duration(8 * time.Second)})
	waitFor(t, "progress of bks-2-primary", func() bool { return getSnapshot(t, c, "bks-2-primary").Status.Progress != nil })
	snap = getSnapshot(t, c, "bks-2-primary")
	want := storagev1alpha1.TransferProgress{BytesDone: 1 << 30, Done: "1.0 GiB", BytesPerSecond: 128 << 20, Rate: "128 MiB/s",
		TotalBytes: 3 << 30, TotalEstimated: true, Total: "3.0 GiB (estimate)"}
	assertProgress(t, "component", snap.Status.Components["dump"].Progress, want)
	assertProgress(t, "Snapshot", snap.Status.Progress, want)
	if snap.Status.Components["dump"].Phase != storagev1alpha1.ComponentRunning {
		t.Fatalf("component phase %s, want Running", snap.Status.Components["dump"].Phase)
	}
	// The result replaces the estimate with what the dump was.
	if err := rep.Component(ctx, ComponentResult{Operation: "backup", Repository: "primary", Component: "dump",
		Phase: PhaseSucceeded, SnapshotID: "5a2b3c", Size: 2 << 30, Duration: Duration(16 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	assertProgress(t, "Snapshot done", getSnapshot(t, c, "bks-2-primary").Status.Progress, storagev1alpha1.TransferProgress{
		BytesDone: 2 << 30, Done: "2.0 GiB", BytesPerSecond: 128 << 20, Rate: "128 MiB/s", TotalBytes: 2 << 30, Total: "2.0 GiB"})
}

// assertSnapshot checks a Snapshot's summary and its BackupCompleted
// condition.
func assertSnapshot(t *testing.T, snap *storagev1alpha1.Snapshot, phase storagev1alpha1.SnapshotPhase, components int32,
	size int64, status metav1.ConditionStatus, reason string) {
	t.Helper()
	st := snap.Status
	if st.Phase != phase || st.TotalComponents != components || st.SizeBytes != size || st.Size != humanBytes(uint64(size)) || st.SnapshotTime == nil {
		t.Fatalf("Snapshot %s status: phase %s, %d components, size %q (%d), time %v; want %s, %d, %d bytes",
			snap.Name, st.Phase, st.TotalComponents, st.Size, st.SizeBytes, st.SnapshotTime, phase, components, size)
	}
	cond := meta.FindStatusCondition(st.Conditions, storagev1alpha1.ConditionBackupCompleted)
	if cond == nil || cond.Status != status || cond.Reason != reason || cond.ObservedGeneration != snap.Generation {
		t.Fatalf("Snapshot %s condition %+v, want %s %s at generation %d", snap.Name, cond, status, reason, snap.Generation)
	}
}

// withoutTransfer is c with no transfer, to compare the rest.
func withoutTransfer(c corev1alpha1.RestoreComponentStatus) corev1alpha1.RestoreComponentStatus {
	c.Transfer = nil
	return c
}

// withoutProgress is c with no progress, to compare the rest.
func withoutProgress(c storagev1alpha1.ComponentStatus) storagev1alpha1.ComponentStatus {
	c.Progress = nil
	return c
}

// assertProgress compares a status's progress, but for its time, with
// want.
func assertProgress(t *testing.T, what string, got *storagev1alpha1.TransferProgress, want storagev1alpha1.TransferProgress) {
	t.Helper()
	if got == nil || got.UpdateTime == nil {
		t.Fatalf("%s progress %+v, want %+v with a time", what, got, want)
	}
	g := *got
	g.UpdateTime = nil
	if g != want {
		t.Fatalf("%s progress:\n got %+v\nwant %+v", what, g, want)
	}
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting for %s", what)
}

func TestRestoreSessionReporter(t *testing.T) {
	c, _ := startKube(t)
	ctx := context.Background()
	rs := &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "restore-1"},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     storagev1alpha1.TypedObjectReference{Kind: "HyperbytedbCluster", Name: "db"},
			DataSource: corev1alpha1.RestoreDataSource{Repository: storagev1alpha1.ObjectReference{Name: "primary"}},
			Addon:      corev1alpha1.AddonInfo{Name: "hyperbytedb", Tasks: []corev1alpha1.TaskReference{{Name: "logical-restore"}}},
		},
	}
	if err := c.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	rep := NewRestoreSessionReporter(c, "default", "restore-1")
	get := func() corev1alpha1.RestoreComponentStatus {
		t.Helper()
		if err := c.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
			t.Fatal(err)
		}
		return rs.Status.Components["dump"]
	}

	rep.Progress(ctx, Progress{Operation: "restore", Repository: "primary", Component: "dump", Bytes: 64 << 20, Total: 256 << 20,
		Elapsed: Duration(4 * time.Second)})
	waitFor(t, "restore progress", func() bool { return get().Phase == storagev1alpha1.ComponentRunning })
	running := storagev1alpha1.TransferProgress{BytesDone: 64 << 20, Done: "64 MiB", BytesPerSecond: 16 << 20, Rate: "16 MiB/s",
		TotalBytes: 256 << 20, Total: "256 MiB"}
	if got := get(); got.Progress != "64 MiB of 256 MiB restored, 16 MiB/s" {
		t.Fatalf("restore progress %q", got.Progress)
	}
	assertProgress(t, "component", get().Transfer, running)
	assertProgress(t, "RestoreSession", rs.Status.Progress, running)
	failed := ComponentResult{Operation: "restore", Repository: "primary", Component: "dump", Phase: PhaseFailed,
		Size: 1024, Duration: Duration(2 * time.Second), Error: "driver: restore: database is read-only"}
	if err := rep.Component(ctx, failed); err != nil {
		t.Fatal(err)
	}
	want := corev1alpha1.RestoreComponentStatus{Phase: storagev1alpha1.ComponentFailed, Progress: "1.0 KiB of 256 MiB restored, 512 B/s",
		Duration: "2s", Error: failed.Error}
	if got := get(); got.Transfer == nil || got.Transfer.TotalBytes != 256<<20 || withoutTransfer(got) != want {
		t.Fatalf("failed restore:\n got %+v\nwant %+v", got, want)
	}
	// A retried Job succeeds: the error goes.
	rep = NewRestoreSessionReporter(c, "default", "restore-1")
	ok := ComponentResult{Operation: "restore", Repository: "primary", Component: "dump", Phase: PhaseSucceeded,
		Size: 1258291, Duration: Duration(3 * time.Second)}
	if err := rep.Component(ctx, ok); err != nil {
		t.Fatal(err)
	}
	want = corev1alpha1.RestoreComponentStatus{Phase: storagev1alpha1.ComponentSucceeded, Progress: "1.2 MiB restored, 410 KiB/s", Duration: "3s"}
	if got := get(); withoutTransfer(got) != want || rs.Status.Phase != "" {
		t.Fatalf("retried restore:\n got %+v (session phase %q)\nwant %+v", got, rs.Status.Phase, want)
	}

	assertProgress(t, "restored", rs.Status.Progress, storagev1alpha1.TransferProgress{BytesDone: 1258291, Done: "1.2 MiB",
		BytesPerSecond: 419430, Rate: "410 KiB/s", TotalBytes: 1258291, Total: "1.2 MiB"})

	// What the driver says it restored is recorded whole: a second try
	// that restored less leaves nothing of the first, and a failed try
	// removes it.
	for _, restored := range []*corev1alpha1.RestoredData{
		{ObjectKind: "databases", ObjectCount: 2, Objects: []string{"events", "metrics"},
			Items: []corev1alpha1.RestoredItems{{Unit: "points", Count: 1200}, {Unit: "series", Count: 3}}},
		{Items: []corev1alpha1.RestoredItems{{Unit: "points", Count: 7}}},
	} {
		ok.Restored = restored
		if err := NewRestoreSessionReporter(c, "default", "restore-1").Component(ctx, ok); err != nil {
			t.Fatal(err)
		}
		if got := get().Restored; !reflect.DeepEqual(got, restored) {
			t.Fatalf("restored = %+v, want %+v", got, restored)
		}
	}
	if err := NewRestoreSessionReporter(c, "default", "restore-1").Component(ctx, failed); err != nil {
		t.Fatal(err)
	}
	if got := get().Restored; got != nil {
		t.Fatalf("a failed try left restored = %+v", got)
	}

	err := NewRestoreSessionReporter(c, "default", "missing").Component(ctx, ok)
	if err == nil || !strings.Contains(err.Error(), `restoresessions.core.keepsake.dev "missing" not found`) {
		t.Fatalf("report to a missing RestoreSession: %v", err)
	}
}

// TestRunReportsToKubernetes runs the keepsake binary as a Job does, with
// KUBECONFIG standing in for the service account: a backup into two
// repositories fills their Snapshots, a restore its RestoreSession.
func TestRunReportsToKubernetes(t *testing.T) {
	c, api := startKube(t)
	s := newStand(t)
	ds := hyperbytedbtest.Mixed(time.Now())
	ds.Write(t, s.api)
	primary, offsite := s.repo(t, "primary"), s.repo(t, "offsite")
	createSnapshot(t, c, "bks-7-primary", "bks-7", "primary")
	createSnapshot(t, c, "bks-7-offsite", "bks-7", "offsite")
	params := s.file(t, "params.json", `{"url": "`+s.influx.URL+`", "authSecret": "influx-auth", "mode": "merge"}`)
	common := []string{"--driver", filepath.Join(binDir, "hyperbytedb-driver"), "--component", "dump",
		"--restic", servers.Bin(t, "restic"), "--cache-dir", filepath.Join(s.dir, "cache"), "--params-file", params,
		"--secret", "authSecret=" + s.auth, "--target-kind", "HyperbytedbCluster", "--target-name", "db", "--target-namespace", "prod",
		"--report-to", "kubernetes", "--namespace", "default"}
	env := []string{"KUBECONFIG=" + kubeconfig(t, api)}

	keepsake(t, 0, env, append([]string{"run", "backup", "--repository", specFlag(primary), "--repository", specFlag(offsite),
		"--backup-session", "bks-7", "--session", "hourly"}, common...)...)
	for _, spec := range []RepositorySpec{primary, offsite} {
		snaps := s.snapshots(t, spec)
		if len(snaps) != 1 || snaps[0].Summary == nil {
			t.Fatalf("restic snapshots of %s: %+v", spec.Name, snaps)
		}
		obj := getSnapshot(t, c, "bks-7-"+spec.Name)
		size := int64(snaps[0].Summary.TotalBytesProcessed)
		assertSnapshot(t, obj, storagev1alpha1.SnapshotSucceeded, 1, size, metav1.ConditionTrue, storagev1alpha1.ReasonBackupSucceeded)
		got := obj.Status.Components["dump"]
		if got.ResticSnapshotID != snaps[0].ID || got.Path != "/dump" || snaps[0].Paths[0] != "/dump" || got.SizeBytes != size ||
			got.Driver != "hyperbytedb 0.1.0" || got.Phase != storagev1alpha1.ComponentSucceeded {
			t.Fatalf("Snapshot %s component %+v; restic has %s with paths %v", obj.Name, got, snaps[0].ID, snaps[0].Paths)
		}
	}

	rs := createRestoreSession(t, c, "restore-7", "offsite")
	keepsake(t, 0, append(env, "KEEPSAKE_RESTORE_SESSION=restore-7"),
		append([]string{"run", "restore", "--repository", specFlag(offsite)}, common...)...)
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(rs), rs); err != nil {
		t.Fatal(err)
	}
	if got := rs.Status.Components["dump"]; got.Phase != storagev1alpha1.ComponentSucceeded || got.Error != "" ||
		!strings.Contains(got.Progress, " restored") || got.Duration == "" {
		t.Fatalf("RestoreSession component %+v", got)
	}
	assertRestored(t, rs.Status.Components["dump"].Restored, ds)

	// A report that cannot be recorded fails the run.
	_, stderr := keepsake(t, 1, env, append([]string{"run", "backup", "--repository", specFlag(primary),
		"--backup-session", "bks-missing"}, common...)...)
	if !strings.Contains(stderr, "no Snapshot in namespace default has label core.keepsake.dev/backup-session=bks-missing") {
		t.Fatalf("backup without its Snapshot: %s", stderr)
	}
}
