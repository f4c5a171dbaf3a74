package functions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keepsake-dev/keepsake/repository/restic"
)

// ForgetConfig configures RunForget.
type ForgetConfig struct {
	// Repository holds the snapshots.
	Repository RepositorySpec
	// SnapshotIDs are the restic snapshots to forget, full or short IDs.
	SnapshotIDs []string
	// Restic is the path of the restic binary.
	Restic string
	// CacheDir is restic's cache directory; empty for restic's default.
	CacheDir string
	// Reporter receives the forgotten snapshots.
	Reporter MaintenanceReporter
	// Locks removes the locks of ended Jobs and reports a wait; nil
	// leaves locks to restic.
	Locks *LockKeeper
}

// ForgetResult is what a forget run removed from one repository.
type ForgetResult struct {
	// Repository is the repository's name.
	Repository string `json:"repository"`
	// Forgotten are the full IDs of the snapshots removed.
	Forgotten []string `json:"forgotten"`
	// Missing are the requested IDs that were already gone.
	Missing []string `json:"missing"`
	// Duration is how long the run took, prune included.
	Duration Duration `json:"duration"`
}

// RunForget forgets the given snapshots and prunes their data. IDs the
// repository no longer has are skipped, so a retried Job succeeds; prune
// runs even when nothing was left to forget, finishing an interrupted run.
func RunForget(ctx context.Context, cfg ForgetConfig) error {
	start := time.Now()
	if len(cfg.SnapshotIDs) == 0 || slices.Contains(cfg.SnapshotIDs, "") {
		return errors.New("forget: no snapshot IDs, or an empty one")
	}
	repo, err := openMaintained(ctx, cfg.Repository, cfg.Restic, cfg.CacheDir, cfg.Locks, LockWait{SnapshotIDs: cfg.SnapshotIDs})
	if err != nil {
		return err
	}
	snaps, err := repo.Snapshots(ctx)
	if err != nil {
		return fmt.Errorf("forget in repository %s: list snapshots: %w", cfg.Repository.Name, err)
	}
	found, missing, err := matchSnapshots(snaps, cfg.SnapshotIDs)
	if err != nil {
		return fmt.Errorf("forget in repository %s: %w", cfg.Repository.Name, err)
	}
	if err := repo.ForgetIDs(ctx, found...); err != nil {
		return fmt.Errorf("forget in repository %s: %w", cfg.Repository.Name, err)
	}
	if err := repo.Prune(ctx); err != nil {
		return fmt.Errorf("prune repository %s: %w", cfg.Repository.Name, err)
	}
	res := ForgetResult{Repository: cfg.Repository.Name, Forgotten: nonNil(found), Missing: nonNil(missing), Duration: Duration(time.Since(start))}
	if err := cfg.Reporter.Forget(ctx, res); err != nil {
		return fmt.Errorf("report forget: %w", err)
	}
	return nil
}

// matchSnapshots splits ids into the full IDs of the snapshots they name
// (an ID may be a prefix, as restic accepts) and those naming none. A
// prefix naming several snapshots is an error: forgetting the wrong one
// cannot be undone.
func matchSnapshots(snaps []restic.Snapshot, ids []string) (found, missing []string, err error) {
	for _, id := range ids {
		var matches []string
		for _, s := range snaps {
			if strings.HasPrefix(s.ID, id) {
				matches = append(matches, s.ID)
			}
		}
		switch {
		case len(matches) == 0:
			missing = append(missing, id)
		case len(matches) > 1:
			return nil, nil, fmt.Errorf("snapshot ID %s is ambiguous: %d snapshots start with it", id, len(matches))
		case !slices.Contains(found, matches[0]):
			found = append(found, matches[0])
		}
	}
	return found, missing, nil
}
