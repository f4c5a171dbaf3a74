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
	repo := restic.New(rc)
	cfg.Locks.Prepare(ctx, repo, cfg.Repository, false, LockWait{Component: cfg.Request.Component})
	res.SnapshotID, err = resolveSnapshot(ctx, repo, cfg.Snapshot, cfg.Request.Component)
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
	out, err := drv.Restore(ctx, &sdk.RestoreRequest{Request: cfg.Request}, &countingReader{r: pr, progress: func(done uint64) {
		cfg.Reporter.Progress(ctx, Progress{Operation: "restore", Repository: cfg.Repository.Name, Component: cfg.Request.Component, Bytes: done})
	}})
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
// component; an explicit ID is returned as is.
func resolveSnapshot(ctx context.Context, repo *restic.Repo, snapshot, component string) (string, error) {
	if snapshot != "" && snapshot != "latest" {
		return snapshot, nil
	}
	snaps, err := repo.Snapshots(ctx, snapshotTags(component, "", "")...)
	if err != nil {
		return "", fmt.Errorf("list snapshots: %w", err)
	}
	if len(snaps) == 0 {
		return "", errors.New("no snapshot of component " + component + " in the repository")
	}
	latest := snaps[0]
	for _, s := range snaps[1:] {
		if !s.Time.Before(latest.Time) {
			latest = s
		}
	}
	return latest.ID, nil
}

// countingReader reports how many bytes were read, at most every
// progressEvery bytes.
type countingReader struct {
	r        io.Reader
	n, last  uint64
	progress func(uint64)
}

const progressEvery = 64 << 20

// Read implements io.Reader.
func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	if c.n-c.last >= progressEvery {
		c.last = c.n
		c.progress(c.n)
	}
	return n, err
}
