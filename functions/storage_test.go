package functions

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// troubleLog is a Reporter that hears storage trouble on a channel.
type troubleLog struct {
	Reporter
	heard chan StorageTrouble
}

func (l troubleLog) StorageTrouble(_ context.Context, t StorageTrouble) { l.heard <- t }

func (l troubleLog) next(t *testing.T) StorageTrouble {
	t.Helper()
	select {
	case got := <-l.heard:
		return got
	case <-time.After(10 * time.Second):
		t.Fatal("no storage trouble reported")
		return StorageTrouble{}
	}
}

// TestStorageWatch: the first retry is reported at once with its start,
// later ones within the interval are not, a success after retries is
// reported at once, and nothing comes after stop.
func TestStorageWatch(t *testing.T) {
	rep := troubleLog{heard: make(chan StorageTrouble, 10)}
	w := watchStorage(context.Background(), rep, time.Hour, StorageTrouble{Repository: "primary", Component: "dump"})
	w.note("Save(<data/1>) returned error, retrying after 1s: connection refused")
	first := rep.next(t)
	if first.Repository != "primary" || first.Component != "dump" || !strings.Contains(first.Message, "connection refused") || first.Since.IsZero() {
		t.Fatalf("first report %+v: want the retry of primary/dump with its start", first)
	}
	w.note("Save(<data/2>) returned error, retrying after 2s: connection refused") // within the hour: not reported
	w.note("")
	if got := rep.next(t); got.Message != "" || !got.Since.IsZero() {
		t.Fatalf("report after the success: %+v, want the trouble over", got)
	}
	w.stop()
	w.note("Save(<data/3>) returned error, retrying after 1s: connection refused")
	select {
	case got := <-rep.heard:
		t.Fatalf("reported after stop: %+v", got)
	default:
	}

	// With no interval, each retry brings restic's latest message, from
	// the same start.
	w = watchStorage(context.Background(), rep, 0, StorageTrouble{Repository: "primary"})
	defer w.stop()
	w.note("first")
	a := rep.next(t)
	w.note("second")
	if b := rep.next(t); b.Message != "second" || !b.Since.Equal(a.Since) {
		t.Fatalf("second report %+v after %+v: want restic's latest message since the first retry", b, a)
	}
}

// TestStorageTroubleShowsOnItsSnapshot: while restic retries, the
// session's Snapshot of the repository has StorageUnreachable with
// restic's message; it goes when the storage answers, and the result
// removes it too.
func TestStorageTroubleShowsOnItsSnapshot(t *testing.T) {
	c, _ := startKube(t)
	createSnapshot(t, c, "retrying", "bks-1", "primary")
	rep := NewSnapshotReporter(c, "default", "bks-1")
	trouble := StorageTrouble{Repository: "primary", Component: "dump", Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Message: "Save(<data/1>) returned error, retrying after 1s: dial tcp 10.0.0.1:9000: connect: connection refused"}
	condition := func() *metav1.Condition {
		return meta.FindStatusCondition(getSnapshot(t, c, "retrying").Status.Conditions, storagev1alpha1.ConditionStorageUnreachable)
	}
	rep.StorageTrouble(context.Background(), trouble)
	if got := condition(); got == nil || got.Status != metav1.ConditionTrue || got.Reason != storagev1alpha1.ReasonStorageRetrying ||
		!strings.Contains(got.Message, "connection refused") || !strings.Contains(got.Message, "repository primary since 2026-01-02T03:04:05Z") {
		t.Fatalf("StorageUnreachable while restic retries: %+v", got)
	}
	rep.StorageTrouble(context.Background(), StorageTrouble{Repository: "primary", Component: "dump"})
	if got := condition(); got != nil {
		t.Fatalf("StorageUnreachable after the storage answered: %+v, want none", got)
	}
	rep.StorageTrouble(context.Background(), trouble)
	res := ComponentResult{Operation: "backup", Repository: "primary", Component: "dump", Phase: PhaseSucceeded, SnapshotID: "abc", Size: 10}
	if err := rep.Component(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if got := condition(); got != nil {
		t.Fatalf("StorageUnreachable after the result: %+v, want none", got)
	}
}

// TestStorageTroubleShowsOnItsRestoreSession: the same on a restore.
func TestStorageTroubleShowsOnItsRestoreSession(t *testing.T) {
	c, _ := startKube(t)
	rs := createRestoreSession(t, c, "restore-retries", "primary")
	condition := func() *metav1.Condition {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(rs), rs); err != nil {
			t.Fatal(err)
		}
		return meta.FindStatusCondition(rs.Status.Conditions, storagev1alpha1.ConditionStorageUnreachable)
	}
	rep := NewRestoreSessionReporter(c, "default", rs.Name)
	trouble := StorageTrouble{Repository: "primary", Component: "dump", Since: time.Now(),
		Message: "Load(<data/1>, 0, 100) returned error, retrying after 1s: connection refused"}
	rep.StorageTrouble(context.Background(), trouble)
	if got := condition(); got == nil || got.Status != metav1.ConditionTrue || !strings.Contains(got.Message, "Load(<data/1>") {
		t.Fatalf("StorageUnreachable while restic retries: %+v", got)
	}
	res := ComponentResult{Operation: "restore", Repository: "primary", Component: "dump", Phase: PhaseFailed, Error: "restic dump: storage unreachable"}
	if err := rep.Component(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	if got := condition(); got != nil {
		t.Fatalf("StorageUnreachable after the result: %+v, want none", got)
	}
}

// troubleTee reports to the Job's log and hears storage trouble on a
// channel.
type troubleTee struct {
	*StdoutReporter
	heard chan StorageTrouble
}

func (r troubleTee) StorageTrouble(ctx context.Context, t StorageTrouble) {
	r.StdoutReporter.StorageTrouble(ctx, t)
	r.heard <- t
}

// TestBackupTellsOfStorageTrouble: MinIO is killed while a backup runs
// and started again once the run reports the trouble. The run reports
// restic's retries of repository primary, then the storage answering
// again, in its log too, and the backup succeeds.
func TestBackupTellsOfStorageTrouble(t *testing.T) {
	s, _ := bigStand(t, 200_000, 0)
	repo := s.repo(t, "primary")
	var out bytes.Buffer
	cfg := BackupConfig{Common: s.common(t, &out, nil), Repositories: []RepositorySpec{repo}}
	rep := troubleTee{StdoutReporter: NewStdoutReporter(&out), heard: make(chan StorageTrouble, 100)}
	cfg.Reporter = rep
	go killWhenWritten(t, cfg.Driver, 2<<20, func(int) { s.minio.Stop() })
	done := make(chan error, 1)
	go func() { done <- RunBackup(context.Background(), cfg) }()

	var first StorageTrouble
	select {
	case first = <-rep.heard:
	case err := <-done:
		t.Fatalf("the backup ended (%v) before it reported storage trouble", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("no storage trouble reported with MinIO stopped")
	}
	if first.Repository != "primary" || first.Component != "dump" || !strings.Contains(first.Message, "connection refused") {
		t.Errorf("first report %+v: want restic's retry of repository primary, component dump", first)
	}
	s.minio.Restart(t)
	if err := <-done; err != nil {
		t.Fatalf("backup after MinIO came back: %v\n%s", err, out.String())
	}
	recovered := false
	for len(rep.heard) > 0 {
		recovered = recovered || (<-rep.heard).Message == ""
	}
	if !recovered {
		t.Error("the run never said the storage answered again")
	}
	if !strings.Contains(out.String(), `"event":"storageTrouble"`) {
		t.Errorf("the Job's log has no storageTrouble event:\n%s", out.String())
	}
	if comps, _ := events(t, &out); len(comps) != 1 || comps[0].Phase != PhaseSucceeded || len(s.snapshots(t, repo)) != 1 {
		t.Fatalf("component %+v: want one Succeeded snapshot", comps)
	}
}
