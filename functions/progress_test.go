package functions

import (
	"bytes"
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
