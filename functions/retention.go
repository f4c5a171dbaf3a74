package functions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keepsake-dev/keepsake/repository/restic"
)

// RetentionConfig configures RunRetention.
type RetentionConfig struct {
	// Repository is the one repository to apply the policy to.
	Repository RepositorySpec
	// Configuration and Session name the session whose snapshots the
	// policy applies to; the snapshots of every other session, of this
	// configuration or another sharing the repository, are left alone.
	Configuration, Session string
	// Policy says which snapshots to keep; it must keep something.
	Policy restic.RetentionPolicy
	// Restic is the path of the restic binary.
	Restic string
	// CacheDir is restic's cache directory; empty for restic's default.
	CacheDir string
	// Reporter receives the kept and removed snapshots.
	Reporter MaintenanceReporter
	// Locks removes the locks of ended Jobs and reports a wait; nil
	// leaves locks to restic.
	Locks *LockKeeper
}

// MaintenanceReporter receives the results of retention and forget runs.
type MaintenanceReporter interface {
	// Retention reports the snapshots a retention run kept and removed.
	Retention(ctx context.Context, r RetentionResult) error
	// Forget reports the snapshots a forget run removed.
	Forget(ctx context.Context, r ForgetResult) error
}

// RetentionResult is what a retention run did to one repository.
type RetentionResult struct {
	// Repository is the repository's name.
	Repository string `json:"repository"`
	// Kept are the IDs of Keepsake's snapshots left in the repository.
	Kept []string `json:"kept"`
	// Removed are the IDs of the snapshots forgotten.
	Removed []string `json:"removed"`
	// Duration is how long the run took, prune included.
	Duration Duration `json:"duration"`
}

// errEmptyPolicy: a policy that keeps nothing would forget everything, and
// restic refuses it.
var errEmptyPolicy = errors.New("retention policy keeps nothing: give at least one --keep-* flag")

// RunRetention forgets the Keepsake snapshots of one session (tags
// keepsake, configuration=<c>, session=<s>) in one repository that the
// policy does not keep, per host and path (target and component), reports
// them, then prunes their data. It reports before pruning: the snapshots
// are gone once forgotten, whether or not prune then fails.
func RunRetention(ctx context.Context, cfg RetentionConfig) error {
	start := time.Now()
	if err := checkPolicy(cfg.Policy); err != nil {
		return err
	}
	if cfg.Session == "" {
		return errors.New("retention needs the session whose snapshots it applies to")
	}
	repo, err := openMaintained(ctx, cfg.Repository, cfg.Restic, cfg.CacheDir, cfg.Locks, LockWait{})
	if err != nil {
		return err
	}
	removed, err := repo.Forget(ctx, cfg.Policy, append([]string{"keepsake"}, sessionTags(cfg.Configuration, cfg.Session)...)...)
	if err != nil {
		return fmt.Errorf("retention of repository %s: %w", cfg.Repository.Name, err)
	}
	kept, err := snapshotIDs(ctx, repo)
	if err != nil {
		return fmt.Errorf("retention of repository %s: %w", cfg.Repository.Name, err)
	}
	res := RetentionResult{Repository: cfg.Repository.Name, Kept: kept, Removed: nonNil(removed), Duration: Duration(time.Since(start))}
	if err := cfg.Reporter.Retention(ctx, res); err != nil {
		return fmt.Errorf("report retention: %w", err)
	}
	if err := repo.Prune(ctx); err != nil {
		return fmt.Errorf("prune repository %s: %w", cfg.Repository.Name, err)
	}
	return nil
}

// checkPolicy refuses negative counts and a policy that keeps nothing.
func checkPolicy(p restic.RetentionPolicy) error {
	for _, n := range []int{p.Last, p.Hourly, p.Daily, p.Weekly, p.Monthly, p.Yearly} {
		if n < 0 {
			return fmt.Errorf("retention policy: keep count %d is negative", n)
		}
	}
	if p == (restic.RetentionPolicy{}) {
		return errEmptyPolicy
	}
	return nil
}

// openMaintained opens an existing repository for maintenance and removes
// the stale locks killed runs left, which would block forget and prune:
// those of ended Jobs (locks, if not nil), then those restic itself knows
// stale. A live lock left is reported as wait.
func openMaintained(ctx context.Context, spec RepositorySpec, binary, cacheDir string, locks *LockKeeper, wait LockWait) (*restic.Repo, error) {
	rc, err := spec.resticConfig(binary, cacheDir)
	if err != nil {
		return nil, err
	}
	repo := restic.New(rc)
	locks.Prepare(ctx, repo, spec, true, wait)
	if err := repo.Unlock(ctx); err != nil {
		return nil, fmt.Errorf("unlock repository %s: %w", spec.Name, err)
	}
	return repo, nil
}

// snapshotIDs lists the IDs of Keepsake's snapshots in repo.
func snapshotIDs(ctx context.Context, repo *restic.Repo) ([]string, error) {
	snaps, err := repo.Snapshots(ctx, "keepsake")
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	ids := make([]string, 0, len(snaps))
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	return ids, nil
}

// nonNil makes an empty list print as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
