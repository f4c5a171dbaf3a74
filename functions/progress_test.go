package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// A long backup shows how far it has got: watched on a real API server
// while 2 million points stream from InfluxDB through restic into MinIO,
// the Snapshot's progress grows at least three times before the backup
// ends. The progress interval is lowered from its 5 s default so that a
// fast machine still sees three updates.
func TestBackupProgressInSnapshot(t *testing.T) {
	c, api := startKube(t)
	s, _ := bigStand(t, 2_000_000, 0)
	createSnapshot(t, c, "bks-big-primary", "bks-big", "primary")
	wc, err := client.NewWithWatch(api.Config, client.Options{Scheme: c.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	w, err := wc.Watch(ctx, &storagev1alpha1.SnapshotList{}, client.InNamespace("default"),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", "bks-big-primary")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	const every = 300 * time.Millisecond
	var out bytes.Buffer
	common := s.common(t, &out, nil)
	common.Reporter = NewSnapshotReporter(c, "default", "bks-big").WithProgressInterval(every)
	common.ProgressInterval = every
	done := make(chan error, 1)
	go func() {
		done <- RunBackup(ctx, BackupConfig{Common: common, Repositories: []RepositorySpec{s.repo(t, "primary")}, Run: "bks-big"})
	}()

	seen, final := watchProgress(t, w)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(seen) < 3 {
		t.Fatalf("progress seen %d times before the backup ended, want at least 3: %+v", len(seen), seen)
	}
	for i, p := range seen {
		if p.BytesPerSecond <= 0 || p.Rate == "" || p.Done == "" || p.UpdateTime == nil {
			t.Fatalf("progress %d lacks a rate, a human size or a time: %+v", i, p)
		}
		if i > 0 && p.BytesDone <= seen[i-1].BytesDone {
			t.Fatalf("progress went from %d to %d bytes", seen[i-1].BytesDone, p.BytesDone)
		}
		if p.TotalBytes != 0 {
			t.Fatalf("a first backup has no parent to estimate from, yet total %d", p.TotalBytes)
		}
	}
	size := final.Status.Components["dump"].SizeBytes
	if last := seen[len(seen)-1].BytesDone; last > size || final.Status.Progress.BytesDone != size || final.Status.Progress.TotalBytes != size {
		t.Fatalf("last progress %d bytes, final %+v; the dump has %d", last, final.Status.Progress, size)
	}
	t.Logf("%d progress updates before the end; last %s at %s; dump %s", len(seen),
		seen[len(seen)-1].Done, seen[len(seen)-1].Rate, final.Status.Size)
}

// watchProgress collects each new progress of the Snapshot's Running
// component until the Snapshot ends, and returns them with the ended
// Snapshot.
func watchProgress(t *testing.T, w watch.Interface) ([]storagev1alpha1.TransferProgress, *storagev1alpha1.Snapshot) {
	t.Helper()
	var seen []storagev1alpha1.TransferProgress
	for ev := range w.ResultChan() {
		snap, ok := ev.Object.(*storagev1alpha1.Snapshot)
		if !ok {
			t.Fatalf("watch event %s: %v", ev.Type, ev.Object)
		}
		switch snap.Status.Phase {
		case storagev1alpha1.SnapshotSucceeded:
			return seen, snap
		case storagev1alpha1.SnapshotFailed:
			t.Fatalf("backup failed: %+v", snap.Status)
		}
		c := snap.Status.Components["dump"]
		if c.Phase != storagev1alpha1.ComponentRunning || snap.Status.Progress == nil || snap.Status.Progress.BytesDone == 0 {
			continue
		}
		if n := len(seen); n == 0 || seen[n-1].BytesDone != snap.Status.Progress.BytesDone {
			seen = append(seen, *snap.Status.Progress)
		}
	}
	t.Fatal("the watch ended before the Snapshot did")
	return nil, nil
}

// A restore knows its total before it starts: the size restic recorded
// for the snapshot, whether named as latest, by ID or by short ID.
func TestRestoreProgressKnowsTotal(t *testing.T) {
	s := newStand(t)
	hyperbytedbtest.Mixed(time.Now()).Write(t, s.api)
	repo := s.repo(t, "primary")
	var out bytes.Buffer
	if err := RunBackup(context.Background(), BackupConfig{Common: s.common(t, &out, nil), Repositories: []RepositorySpec{repo}}); err != nil {
		t.Fatal(err)
	}
	snaps := s.snapshots(t, repo)
	if len(snaps) != 1 || snaps[0].Summary == nil {
		t.Fatalf("restic snapshots %+v", snaps)
	}
	size := snaps[0].Summary.TotalBytesProcessed
	for _, snapshot := range []string{"latest", snaps[0].ID, snaps[0].ShortID} {
		out.Reset()
		common := s.common(t, &out, map[string]string{"mode": "merge"})
		common.ProgressInterval = time.Nanosecond // every read
		if err := RunRestore(context.Background(), RestoreConfig{Common: common, Repository: repo, Snapshot: snapshot}); err != nil {
			t.Fatalf("restore %s: %v", snapshot, err)
		}
		progress := progressEvents(t, &out)
		if len(progress) == 0 {
			t.Fatalf("restore %s reported no progress:\n%s", snapshot, out.String())
		}
		for _, p := range progress {
			if p.Total != size || p.Bytes == 0 || p.Bytes > size || p.Elapsed <= 0 {
				t.Fatalf("restore %s progress %+v, want a total of %d", snapshot, p, size)
			}
		}
	}
}

// progressEvents are the progress lines of StdoutReporter output.
func progressEvents(t *testing.T, out *bytes.Buffer) []Progress {
	t.Helper()
	var ps []Progress
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("report line %q: %v", line, err)
		}
		if e.Progress != nil {
			ps = append(ps, *e.Progress)
		}
	}
	return ps
}
