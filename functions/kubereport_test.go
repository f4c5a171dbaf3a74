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
		Phase: PhaseSucceeded, SnapshotID: "4f1e2d", Size: 1258291, DataAdded: 2048, Duration: Duration(3 * time.Second)}
	if err := rep.Component(ctx, ok); err != nil {
		t.Fatal(err)
	}
	snap := getSnapshot(t, c, "bks-1-primary")
	wantDump := storagev1alpha1.ComponentStatus{Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: "4f1e2d",
		Path: "/dump", Size: "1.2 MiB", SizeBytes: 1258291, DataAdded: "2.0 KiB", Duration: "3s", Driver: "hyperbytedb 0.1.0"}
	assertSnapshot(t, snap, storagev1alpha1.SnapshotSucceeded, 1, 1258291, metav1.ConditionTrue, storagev1alpha1.ReasonBackupSucceeded)
	if got := snap.Status.Components["dump"]; got != wantDump {
		t.Fatalf("component dump:\n got %+v\nwant %+v", got, wantDump)
	}

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
	if got := snap.Status.Components["dump"]; got != wantFailed {
		t.Fatalf("failed component:\n got %+v\nwant %+v", got, wantFailed)
	}
	if cond := meta.FindStatusCondition(snap.Status.Conditions, storagev1alpha1.ConditionBackupCompleted); cond.Message != "dump: "+failed.Error {
		t.Fatalf("condition message %q", cond.Message)
	}

	// A second component: Running while it streams, then its driver fails.
	rep.Progress(ctx, Progress{Operation: "backup", Repository: "primary", Component: "wal", Bytes: 10})
	waitFor(t, "component wal Running", func() bool {
		return getSnapshot(t, c, "bks-1-primary").Status.Components["wal"].Phase == storagev1alpha1.ComponentRunning
	})
	walFailed := ComponentResult{Operation: "backup", Repository: "primary", Component: "wal", Phase: PhaseFailed,
		Error: "driver: dump: connection refused", FailedIn: FailedInDriver}
	if err := rep.Component(ctx, walFailed); err != nil {
		t.Fatal(err)
	}
	snap = getSnapshot(t, c, "bks-1-primary")
	assertSnapshot(t, snap, storagev1alpha1.SnapshotFailed, 2, 1258291, metav1.ConditionFalse, storagev1alpha1.ReasonDumpFailed)
	if snap.Status.Components["dump"] != wantDump || snap.Status.Components["wal"].Phase != storagev1alpha1.ComponentFailed {
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

	rep.Progress(ctx, Progress{Operation: "restore", Repository: "primary", Component: "dump", Bytes: 64 << 20})
	waitFor(t, "restore progress", func() bool {
		return get() == corev1alpha1.RestoreComponentStatus{Phase: storagev1alpha1.ComponentRunning, Progress: "64 MiB restored"}
	})
	failed := ComponentResult{Operation: "restore", Repository: "primary", Component: "dump", Phase: PhaseFailed,
		Size: 1024, Duration: Duration(2 * time.Second), Error: "driver: restore: database is read-only"}
	if err := rep.Component(ctx, failed); err != nil {
		t.Fatal(err)
	}
	want := corev1alpha1.RestoreComponentStatus{Phase: storagev1alpha1.ComponentFailed, Progress: "1.0 KiB restored",
		Duration: "2s", Error: failed.Error}
	if got := get(); got != want {
		t.Fatalf("failed restore:\n got %+v\nwant %+v", got, want)
	}
	// A retried Job succeeds: the error goes.
	rep = NewRestoreSessionReporter(c, "default", "restore-1")
	ok := ComponentResult{Operation: "restore", Repository: "primary", Component: "dump", Phase: PhaseSucceeded,
		Size: 1258291, Duration: Duration(3 * time.Second)}
	if err := rep.Component(ctx, ok); err != nil {
		t.Fatal(err)
	}
	want = corev1alpha1.RestoreComponentStatus{Phase: storagev1alpha1.ComponentSucceeded, Progress: "1.2 MiB restored", Duration: "3s"}
	if got := get(); got != want || rs.Status.Phase != "" {
		t.Fatalf("retried restore:\n got %+v (session phase %q)\nwant %+v", got, rs.Status.Phase, want)
	}

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

	rs := &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "restore-7"},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     storagev1alpha1.TypedObjectReference{Kind: "HyperbytedbCluster", Name: "db"},
			DataSource: corev1alpha1.RestoreDataSource{Repository: storagev1alpha1.ObjectReference{Name: "offsite"}},
			Addon:      corev1alpha1.AddonInfo{Name: "hyperbytedb", Tasks: []corev1alpha1.TaskReference{{Name: "logical-restore"}}},
		},
	}
	if err := c.Create(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	keepsake(t, 0, append(env, "KEEPSAKE_RESTORE_SESSION=restore-7"),
		append([]string{"run", "restore", "--repository", specFlag(offsite)}, common...)...)
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(rs), rs); err != nil {
		t.Fatal(err)
	}
	if got := rs.Status.Components["dump"]; got.Phase != storagev1alpha1.ComponentSucceeded || got.Error != "" ||
		!strings.HasSuffix(got.Progress, " restored") || got.Duration == "" {
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
