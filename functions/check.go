package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

// CheckConfig configures RunCheck.
type CheckConfig struct {
	// Repository is the repository to check.
	Repository RepositorySpec
	// ReadDataSubset, if not empty, makes restic read and verify that part
	// of the data too (--read-data-subset, e.g. 5%).
	ReadDataSubset string
	// Restic and CacheDir run restic.
	Restic, CacheDir string
	// Job and Request name the check Job and the check-requested
	// annotation it answers; both are echoed into the status.
	Job, Request string
	// Reporter receives the verdict and the stored size.
	Reporter RepositoryReporter
	// Locks removes the locks of ended Jobs first; nil leaves them to restic.
	Locks *LockKeeper
}

// RepositoryReporter records what Jobs learn about a whole repository.
type RepositoryReporter interface {
	// Check reports the outcome of an integrity check.
	Check(ctx context.Context, r CheckResult) error
	// StoredSize reports the repository's size in the storage.
	StoredSize(ctx context.Context, repository string, bytes uint64) error
}

// CheckResult is the outcome of one integrity check.
type CheckResult struct {
	// Repository is the repository's name.
	Repository string `json:"repository"`
	// Result is Passed, Failed (damage found) or Error (could not check).
	Result storagev1alpha1.IntegrityResult `json:"result"`
	// Message is restic's verdict or the error.
	Message string `json:"message"`
	// ReadDataSubset is the part of the data read.
	ReadDataSubset string `json:"readDataSubset,omitempty"`
	// Job and Request are CheckConfig's.
	Job     string `json:"job,omitempty"`
	Request string `json:"request,omitempty"`
	// Time is when the check ended.
	Time time.Time `json:"time"`
	// StoredBytes is the repository's size in the storage after the
	// check; zero when stats failed.
	StoredBytes uint64 `json:"storedBytes,omitempty"`
}

// RunCheck runs `restic check` on one repository and reports the verdict:
// Passed, or Failed with restic's account of the damage, or Error when
// the check could not run. Then it reports the stored size. It returns an
// error only when the check could not run or the verdict could not be
// recorded: found damage is a result, recorded, not a failure of the Job.
func RunCheck(ctx context.Context, cfg CheckConfig) error {
	res := CheckResult{Repository: cfg.Repository.Name, ReadDataSubset: cfg.ReadDataSubset, Job: cfg.Job, Request: cfg.Request}
	repo, err := openMaintained(ctx, cfg.Repository, cfg.Restic, cfg.CacheDir, cfg.Locks, LockWait{})
	if err == nil {
		err = repo.Check(ctx, cfg.ReadDataSubset)
	}
	res.Result, res.Message = verdict(cfg.ReadDataSubset, err)
	if res.Result != storagev1alpha1.IntegrityError {
		res.StoredBytes = storedBytes(ctx, repo)
	}
	res.Time = time.Now()
	if rerr := cfg.Reporter.Check(ctx, res); rerr != nil {
		return errors.Join(checkError(cfg.Repository.Name, res), fmt.Errorf("report check: %w", rerr))
	}
	return checkError(cfg.Repository.Name, res)
}

// verdict turns the outcome of restic check into a result and a message.
func verdict(subset string, err error) (storagev1alpha1.IntegrityResult, string) {
	var cerr *restic.CommandError
	switch {
	case err == nil && subset != "":
		return storagev1alpha1.IntegrityPassed, fmt.Sprintf("no errors were found; %s of the data was read and verified", subset)
	case err == nil:
		return storagev1alpha1.IntegrityPassed, "no errors were found in the repository's structure (no data was read)"
	case errors.Is(err, restic.ErrIntegrity) && errors.As(err, &cerr):
		return storagev1alpha1.IntegrityFailed, "restic check found damage: " + cerr.Message
	}
	return storagev1alpha1.IntegrityError, err.Error()
}

// storedBytes is the repository's size in the storage, 0 if stats fail.
func storedBytes(ctx context.Context, repo *restic.Repo) uint64 {
	st, err := repo.Stats(ctx)
	if err != nil {
		return 0
	}
	return st.TotalSize
}

// checkError is the Job's error for res: only a check that could not run.
func checkError(name string, res CheckResult) error {
	if res.Result == storagev1alpha1.IntegrityError {
		return fmt.Errorf("check repository %s: %s", name, res.Message)
	}
	return nil
}

// runCheck runs `keepsake run check`: the verdict goes to stdout as a
// JSON line and, with --report-to kubernetes, into the Repository's status.
func runCheck(ctx context.Context, f *runFlags, stdout, stderr io.Writer) error {
	var rep RepositoryReporter = jsonRepositoryReporter{w: stdout}
	if f.reportTo == reportKubernetes {
		c, err := f.client(stderr)
		if err != nil {
			return err
		}
		rep = teeRepository{log: jsonRepositoryReporter{w: stdout}, main: NewRepositoryStatusReporter(c, f.namespace)}
	}
	return RunCheck(ctx, CheckConfig{
		Repository: f.repositories[0], ReadDataSubset: f.readDataSubset, Restic: resticBinary(f.restic), CacheDir: f.cacheDir,
		Job: f.job, Request: f.request, Reporter: rep, Locks: f.lockKeeper(rep, stderr),
	})
}

// jsonRepositoryReporter writes repository reports as JSON lines.
type jsonRepositoryReporter struct{ w io.Writer }

// Check implements RepositoryReporter.
func (j jsonRepositoryReporter) Check(_ context.Context, r CheckResult) error {
	return json.NewEncoder(j.w).Encode(map[string]any{"event": "check", "check": r})
}

// StoredSize implements RepositoryReporter.
func (j jsonRepositoryReporter) StoredSize(_ context.Context, repository string, bytes uint64) error {
	return json.NewEncoder(j.w).Encode(map[string]any{"event": "storedSize", "storedSize": map[string]any{"repository": repository, "bytes": bytes}})
}

// teeRepository reports to the log, then to main, whose error it returns.
type teeRepository struct {
	log  jsonRepositoryReporter
	main RepositoryReporter
}

// Check implements RepositoryReporter.
func (t teeRepository) Check(ctx context.Context, r CheckResult) error {
	_ = t.log.Check(ctx, r)
	return t.main.Check(ctx, r)
}

// StoredSize implements RepositoryReporter.
func (t teeRepository) StoredSize(ctx context.Context, repository string, bytes uint64) error {
	_ = t.log.StoredSize(ctx, repository, bytes)
	return t.main.StoredSize(ctx, repository, bytes)
}
