package functions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

// RestoreConfig configures RunRestore.
type RestoreConfig struct {
	Common
	// Repository holds the snapshot.
	Repository RepositorySpec
	// Snapshot is a restic snapshot ID, or "latest" for the newest
	// Keepsake snapshot of the component.
	Snapshot string
}

// RunRestore streams the component's file of the snapshot (`restic dump`)
// into the driver's Restore. If either side fails, the other is stopped:
// the driver never sees a clean end of a short stream.
func RunRestore(ctx context.Context, cfg RestoreConfig) error {
	start := time.Now()
	res := ComponentResult{Operation: "restore", Repository: cfg.Repository.Name, Component: cfg.Request.Component, Phase: PhaseFailed}
	err := restore(ctx, cfg, &res)
	res.Duration = Duration(time.Since(start))
	if err != nil {
		res.Error = err.Error()
	} else {
		res.Phase = PhaseSucceeded
	}
	if rerr := cfg.Reporter.Component(ctx, res); rerr != nil && err == nil {
		err = fmt.Errorf("report: %w", rerr)
	}
	return finish(ctx, cfg.Reporter, "restore", start, err)
}

func restore(ctx context.Context, cfg RestoreConfig, res *ComponentResult) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := cfg.Repository.resticConfig(cfg.Restic, cfg.CacheDir)
	if err != nil {
		return err
	}
	storage := watchStorage(ctx, cfg.Reporter, cfg.progressInterval(), StorageTrouble{Repository: cfg.Repository.Name, Component: cfg.Request.Component})
	defer storage.stop() // before the result is reported
	rc.OnStorageRetry = storage.note
	repo := restic.New(rc)
	cfg.Locks.Prepare(ctx, repo, cfg.Repository, false, LockWait{Component: cfg.Request.Component})
	var total uint64
	res.SnapshotID, total, err = resolveSnapshot(ctx, repo, cfg.Snapshot, cfg.Request.Component)
	if err != nil {
		return err
	}
	drv, info, err := openDriver(ctx, cfg.Common)
	if err != nil {
		return err
	}
	defer drv.Close()
	res.Driver = info

	pr, pw := io.Pipe()
	dumped := make(chan error, 1)
	go func() {
		err := repo.Dump(ctx, res.SnapshotID, cfg.Request.Component, pw)
		_ = pw.CloseWithError(err) // nil: EOF, the dump is complete
		dumped <- err
	}()
	src := newCountingReader(pr, cfg.progressInterval(), func(done uint64, elapsed time.Duration) {
		cfg.Reporter.Progress(ctx, Progress{Operation: "restore", Repository: cfg.Repository.Name, Component: cfg.Request.Component,
			Bytes: done, Total: total, Elapsed: Duration(elapsed)})
	})
	out, err := drv.Restore(ctx, &sdk.RestoreRequest{Request: cfg.Request}, src)
	res.Size = out.Bytes
	res.Restored = restoredData(out.Restored)
	if err != nil {
		_ = pr.CloseWithError(err)
		cancel() // stops restic dump
	}
	<-dumped
	return err
}

// restoredData is what the driver said it restored, as the RestoreSession
// records it: nil when it said nothing, at most MaxRestoredObjects names.
func restoredData(r sdk.Restored) *corev1alpha1.RestoredData {
	if r.IsZero() {
		return nil
	}
	objects := slices.Sorted(slices.Values(r.Objects))
	out := &corev1alpha1.RestoredData{ObjectKind: r.ObjectKind, ObjectCount: int64(len(objects))}
	out.Objects = objects[:min(len(objects), corev1alpha1.MaxRestoredObjects)]
	for _, unit := range slices.Sorted(maps.Keys(r.Items)) {
		out.Items = append(out.Items, corev1alpha1.RestoredItems{Unit: unit, Count: int64(min(r.Items[unit], math.MaxInt64))})
	}
	return out
}

// resolveSnapshot turns "latest" into the newest Keepsake snapshot of the
// component and returns it with its size, zero when restic did not record
// it. An explicit ID not among the component's snapshots is returned as
// is, of unknown size: restic dump judges it.
func resolveSnapshot(ctx context.Context, repo *restic.Repo, snapshot, component string) (string, uint64, error) {
	explicit := snapshot != "" && snapshot != "latest"
	snaps, err := repo.Snapshots(ctx, snapshotTags(component, "", "")...)
	switch {
	case err != nil && explicit:
		return snapshot, 0, nil // the size only feeds progress
	case err != nil:
		return "", 0, fmt.Errorf("list snapshots: %w", err)
	case explicit:
		for _, s := range snaps {
			if s.ID == snapshot || s.ShortID == snapshot {
				return snapshot, snapshotSize(s), nil
			}
		}
		return snapshot, 0, nil
	case len(snaps) == 0:
		return "", 0, errors.New("no snapshot of component " + component + " in the repository")
	}
	latest := snaps[0]
	for _, s := range snaps[1:] {
		if !s.Time.Before(latest.Time) {
			latest = s
		}
	}
	return latest.ID, snapshotSize(latest), nil
}

// snapshotSize is the size of the snapshot's input, zero when unknown.
func snapshotSize(s restic.Snapshot) uint64 {
	if s.Summary == nil {
		return 0
	}
	return s.Summary.TotalBytesProcessed
}

// countingReader counts the bytes read and reports them, at most every
// interval.
type countingReader struct {
	r        io.Reader
	interval time.Duration
	n        uint64
	start    time.Time
	last     time.Time
	progress func(done uint64, elapsed time.Duration)
}

func newCountingReader(r io.Reader, interval time.Duration, progress func(uint64, time.Duration)) *countingReader {
	now := time.Now()
	return &countingReader{r: r, interval: interval, start: now, last: now, progress: progress}
}

// Read implements io.Reader.
func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	if now := time.Now(); n > 0 && now.Sub(c.last) >= c.interval {
		c.last = now
		c.progress(c.n, now.Sub(c.start))
	}
	return n, err
}
