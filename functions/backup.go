package functions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

// Common is what backup and restore runs share.
type Common struct {
	// Driver is the path of the driver binary.
	Driver string
	// Request is passed to the driver: target, parameters, credential
	// paths and component name.
	Request sdk.Request
	// Restic is the path of the restic binary.
	Restic string
	// CacheDir is restic's cache directory; empty for restic's default.
	CacheDir string
	// Reporter receives progress and results.
	Reporter Reporter
	// Log receives the driver's log lines; nil means os.Stderr.
	Log io.Writer
	// Locks removes the locks of ended Jobs and reports a wait; nil
	// leaves locks to restic.
	Locks *LockKeeper
	// ProgressInterval is the least time between two progress reports of
	// a component; zero means DefaultProgressInterval.
	ProgressInterval time.Duration
}

// DefaultProgressInterval is how often a running backup or restore
// reports its progress unless told otherwise: often enough to watch, rare
// enough that the API server does not notice.
const DefaultProgressInterval = 5 * time.Second

// progressInterval is c.ProgressInterval or its default.
func (c Common) progressInterval() time.Duration {
	if c.ProgressInterval > 0 {
		return c.ProgressInterval
	}
	return DefaultProgressInterval
}

// BackupConfig configures RunBackup.
type BackupConfig struct {
	Common
	// Repositories each get a snapshot of the same dump.
	Repositories []RepositorySpec
	// Configuration and Session name the BackupConfiguration and its
	// session; they become snapshot tags, which retention filters on.
	Configuration, Session string
	// Run names the BackupSession; its tag groups the snapshots of one
	// backup (one per component), which repository sync relies on.
	Run string
}

// repoRun is one repository's part of a backup.
type repoRun struct {
	spec   RepositorySpec
	repo   *restic.Repo
	result ComponentResult
	// storage reports restic's retries of a failing storage; stopped
	// before the result is reported.
	storage *storageWatch
}

// RunBackup starts the driver and streams its dump into one restic backup
// per repository at once. A snapshot is made only of a complete dump: if
// the driver fails or dies, every restic is killed before it sees the end
// of its input. Each repository's result is reported; the error is nil
// only if every repository got its snapshot.
func RunBackup(ctx context.Context, cfg BackupConfig) error {
	start := time.Now()
	runs := prepareRepositories(ctx, cfg)
	var ready []*repoRun
	for _, r := range runs {
		if r.result.Error == "" {
			ready = append(ready, r)
		}
	}
	err := errors.New("no repository could be opened")
	if len(ready) > 0 {
		err = backupAll(ctx, cfg, ready)
	}
	if len(ready) < len(runs) {
		err = componentErrors(runs)
	}
	for _, r := range runs {
		if r.storage != nil {
			r.storage.stop()
		}
		if rerr := cfg.Reporter.Component(ctx, r.result); rerr != nil && err == nil {
			err = fmt.Errorf("report: %w", rerr)
		}
	}
	return finish(ctx, cfg.Reporter, "backup", start, err)
}

// prepareRepositories opens every repository, creating missing ones, in
// parallel. One that cannot be opened gets a failed result and is left
// out; the others still get their snapshot.
func prepareRepositories(ctx context.Context, cfg BackupConfig) []*repoRun {
	runs := make([]*repoRun, len(cfg.Repositories))
	errs := make([]error, len(cfg.Repositories))
	var wg sync.WaitGroup
	for i, spec := range cfg.Repositories {
		runs[i] = &repoRun{spec: spec, result: ComponentResult{
			Operation: "backup", Repository: spec.Name, Component: cfg.Request.Component, Phase: PhaseFailed,
		}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runs[i].open(ctx, cfg.Common)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			runs[i].result.Error, runs[i].result.FailedIn = err.Error(), FailedInRepository
		}
	}
	return runs
}

func (r *repoRun) open(ctx context.Context, c Common) error {
	rc, err := r.spec.resticConfig(c.Restic, c.CacheDir)
	if err != nil {
		return err
	}
	r.storage = watchStorage(ctx, c.Reporter, c.progressInterval(), StorageTrouble{Repository: r.spec.Name, Component: c.Request.Component})
	rc.OnStorageRetry = r.storage.note
	r.repo = restic.New(rc)
	if err := r.repo.InitIfAbsent(ctx); err != nil {
		return fmt.Errorf("open repository %s: %w", r.spec.Name, err)
	}
	c.Locks.Prepare(ctx, r.repo, r.spec, false, LockWait{Component: c.Request.Component})
	return nil
}

// backupAll runs the driver and the restic backups.
func backupAll(ctx context.Context, cfg BackupConfig, runs []*repoRun) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	drv, info, err := openDriver(ctx, cfg.Common)
	if err != nil {
		failAll(runs, err)
		return err
	}
	defer drv.Close()
	fan := newFanout(len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		r.result.Driver = info
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.backup(ctx, cfg, fan.reader(i))
		}()
	}
	dumped, derr := drv.Backup(ctx, &sdk.BackupRequest{Request: cfg.Request}, fan)
	fan.finish(derr) // a driver error kills every restic before EOF
	wg.Wait()
	if derr != nil && !errors.Is(derr, errNoSinks) {
		failAll(runs, derr)
		return derr
	}
	for _, r := range runs {
		if r.result.Phase == PhaseSucceeded {
			r.result.Counts = dumped.Counts
		}
	}
	return componentErrors(runs)
}

// backup feeds one repository from its pipe.
func (r *repoRun) backup(ctx context.Context, cfg BackupConfig, src *io.PipeReader) {
	start := time.Now()
	opts := restic.BackupOptions{
		Filename: cfg.Request.Component,
		Host:     snapshotHost(cfg.Request.Target),
		Tags:     append(snapshotTags(cfg.Request.Component, cfg.Configuration, cfg.Session), runTag(cfg.Run)...),

		ProgressInterval: cfg.progressInterval(),
	}
	progress := func(p restic.Progress) {
		cfg.Reporter.Progress(ctx, Progress{Operation: "backup", Repository: r.spec.Name, Component: opts.Filename,
			Bytes: p.BytesDone, Elapsed: Duration(time.Since(start))}) // restic's own elapsed is in whole seconds
	}
	sum, err := r.repo.Backup(ctx, src, opts, progress)
	r.result.Duration = Duration(time.Since(start))
	if err != nil {
		_ = src.CloseWithError(fmt.Errorf("repository %s failed: %w", r.spec.Name, err))
		r.result.Error, r.result.FailedIn = err.Error(), FailedInRepository
		return
	}
	r.result.Phase = PhaseSucceeded
	r.result.SnapshotID = sum.SnapshotID
	r.result.Size = sum.TotalBytesProcessed
	r.result.DataAdded, r.result.DataAddedPacked = sum.DataAdded, sum.DataAddedPacked
}

// snapshotTags mark Keepsake's snapshots and say which component they
// hold and which configuration's session made them.
func snapshotTags(component, configuration, session string) []string {
	return append([]string{"keepsake", "component=" + component}, sessionTags(configuration, session)...)
}

// runTag is the tag naming the BackupSession a snapshot belongs to.
func runTag(run string) []string {
	if run == "" {
		return nil
	}
	return []string{RunTagPrefix + run}
}

// RunTagPrefix starts the tag naming a snapshot's BackupSession.
const RunTagPrefix = "backupsession="

// sessionTags are the tags naming a configuration's session: each
// session's retention forgets only snapshots carrying its own.
func sessionTags(configuration, session string) []string {
	var tags []string
	if configuration != "" {
		tags = append(tags, "configuration="+configuration)
	}
	if session != "" {
		tags = append(tags, "session="+session)
	}
	return tags
}

// snapshotHost names the target as restic's host: namespace/name.
func snapshotHost(t sdk.Target) string {
	if t.Namespace == "" {
		return t.Name
	}
	return t.Namespace + "/" + t.Name
}

// failAll marks every repository as failed with err, the driver's: each
// restic was killed for it, and its own error would only repeat it.
func failAll(runs []*repoRun, err error) {
	for _, r := range runs {
		r.result.Phase, r.result.SnapshotID = PhaseFailed, ""
		r.result.Error, r.result.FailedIn = err.Error(), FailedInDriver
	}
}

// componentErrors sums up the repositories that failed on their own.
func componentErrors(runs []*repoRun) error {
	var failed []string
	for _, r := range runs {
		if r.result.Phase != PhaseSucceeded {
			failed = append(failed, r.spec.Name+": "+r.result.Error)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("backup failed in %d of %d repositories: %s", len(failed), len(runs), strings.Join(failed, "; "))
	}
	return nil
}

// openDriver starts the driver and returns it with "name version".
func openDriver(ctx context.Context, c Common) (*sdk.Client, string, error) {
	drv, info, err := openDriverInfo(ctx, c)
	if err != nil {
		return nil, "", err
	}
	return drv, info.Name + " " + info.Version, nil
}

// openDriverInfo starts the driver and returns it with its Info.
func openDriverInfo(ctx context.Context, c Common) (*sdk.Client, sdk.Info, error) {
	log := c.Log
	if log == nil {
		log = os.Stderr
	}
	drv, err := sdk.Open(ctx, c.Driver, sdk.WithLogOutput(log))
	if err != nil {
		return nil, sdk.Info{}, err
	}
	info, err := drv.Info(ctx)
	if err != nil {
		drv.Close()
		return nil, sdk.Info{}, err
	}
	return drv, info, nil
}

// finish reports the run's end and returns its error.
func finish(ctx context.Context, rep Reporter, op string, start time.Time, err error) error {
	res := RunResult{Operation: op, Phase: PhaseSucceeded, Duration: Duration(time.Since(start))}
	if err != nil {
		res.Phase, res.Error = PhaseFailed, err.Error()
	}
	if rerr := rep.Done(ctx, res); rerr != nil && err == nil {
		return fmt.Errorf("report: %w", rerr)
	}
	return err
}
