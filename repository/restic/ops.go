package restic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// InitIfAbsent creates the repository (format version 2, compressed) unless
// one exists. An existing repository must open with the password: else the
// error wraps ErrWrongPassword.
func (r *Repo) InitIfAbsent(ctx context.Context) error {
	_, err := r.run(ctx, "cat", "config")
	if err == nil || !errors.Is(err, ErrRepositoryMissing) {
		return err
	}
	_, err = r.run(ctx, "init", "--repository-version", "2")
	if err == nil {
		return nil
	}
	// Another process may have created it meanwhile.
	if _, again := r.run(ctx, "cat", "config"); again == nil {
		return nil
	}
	return err
}

// Dump writes the file filename of snapshot snapshotID ("latest" works) to
// w, as restic stored it. On error w may hold part of the file.
func (r *Repo) Dump(ctx context.Context, snapshotID, filename string, w io.Writer) error {
	stderr := newTailBuffer(stderrTail)
	out := &recordingWriter{w: w}
	// --quiet: restic prints "repo already locked, waiting ..." to stdout
	// while --retry-lock waits (cmd/restic/lock.go, Verbosef), which would
	// land in the middle of the dump.
	cmd := r.command(ctx, "dump", "--quiet", snapshotID, "/"+strings.TrimPrefix(filename, "/"))
	cmd.Stdout, cmd.Stderr = out, r.stderr(stderr)
	err := cmd.Run()
	if out.err != nil { // restic died of the closed pipe: the writer's error is the news
		return fmt.Errorf("restic dump %s %s: write: %w", r.cfg.Repository, snapshotID, out.err)
	}
	if err != nil {
		return r.commandError(ctx, "dump", err, stderr.String())
	}
	return nil
}

// recordingWriter remembers the first error of the writer it wraps.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// Snapshot is a restic snapshot as `restic snapshots --json` reports it.
type Snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags"`
	// Summary is set for snapshots made by restic 0.17 or later.
	Summary *SnapshotSummary `json:"summary,omitempty"`
}

// SnapshotSummary is the backup statistics restic stores in a snapshot.
type SnapshotSummary struct {
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
	DataAdded           uint64    `json:"data_added"`
	DataAddedPacked     uint64    `json:"data_added_packed"`
	TotalBytesProcessed uint64    `json:"total_bytes_processed"`
}

// Snapshots lists the snapshots carrying all the given tags (all snapshots
// when none are given), oldest first.
func (r *Repo) Snapshots(ctx context.Context, tags ...string) ([]Snapshot, error) {
	var snaps []Snapshot
	if err := r.runJSON(ctx, &snaps, append([]string{"snapshots"}, tagFilter(tags)...)...); err != nil {
		return nil, err
	}
	return snaps, nil
}

// tagFilter is restic's filter for snapshots carrying all tags.
func tagFilter(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return []string{"--tag", strings.Join(tags, ",")}
}

// Forget removes the snapshots p does not keep among those carrying all
// the given tags, per host and path (restic's default grouping), and
// returns the removed snapshots' IDs. Data is freed by Prune. An empty
// policy removes nothing.
func (r *Repo) Forget(ctx context.Context, p RetentionPolicy, tags ...string) (removed []string, err error) {
	args, err := p.args()
	if err != nil || len(args) == 0 {
		return nil, err
	}
	var groups []struct {
		Remove []Snapshot `json:"remove"`
	}
	args = append(append([]string{"forget"}, args...), tagFilter(tags)...)
	if err := r.runJSON(ctx, &groups, args...); err != nil {
		return nil, err
	}
	for _, g := range groups {
		for _, s := range g.Remove {
			removed = append(removed, s.ID)
		}
	}
	return removed, nil
}

// ForgetIDs removes the snapshots with the given IDs (full or unique
// prefixes). Data is freed by Prune.
func (r *Repo) ForgetIDs(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := r.run(ctx, append([]string{"forget"}, ids...)...)
	return err
}

// Prune deletes data no snapshot references any more.
func (r *Repo) Prune(ctx context.Context) error {
	_, err := r.run(ctx, "prune")
	return err
}

// Check verifies the repository's structure and, if readDataSubset is not
// empty (e.g. "10%", "1/5", "500M"), reads and verifies that part of the
// data too. Damage gives an error wrapping ErrIntegrity.
func (r *Repo) Check(ctx context.Context, readDataSubset string) error {
	args := []string{"check"}
	if readDataSubset != "" {
		args = append(args, "--read-data-subset", readDataSubset)
	}
	_, err := r.run(ctx, args...)
	return err
}

// Unlock removes stale locks: those of restic processes that are gone from
// this host, or that were not refreshed for 30 minutes.
func (r *Repo) Unlock(ctx context.Context) error {
	_, err := r.run(ctx, "unlock")
	return err
}

// UnlockAll removes every lock. Only safe when the caller knows no other
// restic works on the repository (e.g. the operator runs one Job at a time).
func (r *Repo) UnlockAll(ctx context.Context) error {
	_, err := r.run(ctx, "unlock", "--remove-all")
	return err
}

// Locks returns the IDs of the locks in the repository, without locking.
func (r *Repo) Locks(ctx context.Context) ([]string, error) {
	out, err := r.run(ctx, "list", "locks", "--no-lock")
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// Lock is one lock file in the repository, as restic wrote it.
type Lock struct {
	// ID is the lock file's name.
	ID string `json:"-"`
	// Time is when its holder took or last refreshed it; restic refreshes
	// a live lock every LockRefreshInterval.
	Time time.Time `json:"time"`
	// Exclusive locks (prune, check, forget) conflict with every other.
	Exclusive bool `json:"exclusive"`
	// Hostname is the holder's host: in a Kubernetes Job, its pod's name.
	Hostname string `json:"hostname"`
	// PID is the holder's process ID on that host.
	PID int `json:"pid"`
}

// LockRefreshInterval is how often restic 0.18 renews the locks it holds
// (internal/restic/lock.go refreshInterval): a lock older than that, by a
// margin, has lost its holder.
const LockRefreshInterval = 5 * time.Minute

// LockInfos returns the locks in the repository with their holders,
// without locking. A lock removed while it is read is left out.
func (r *Repo) LockInfos(ctx context.Context) ([]Lock, error) {
	ids, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	locks := make([]Lock, 0, len(ids))
	for _, id := range ids {
		out, err := r.run(ctx, "cat", "lock", id, "--no-lock")
		if err != nil {
			if again, lerr := r.Locks(ctx); lerr == nil && !slices.Contains(again, id) {
				continue // released meanwhile
			}
			return nil, err
		}
		l := Lock{ID: id}
		if err := json.Unmarshal(out, &l); err != nil {
			return nil, fmt.Errorf("restic cat lock %s %s: decode: %w", id, r.cfg.Repository, err)
		}
		locks = append(locks, l)
	}
	return locks, nil
}

// Stats is the repository's size as stored (`restic stats --mode raw-data`).
type Stats struct {
	// TotalSize is the size of the stored (compressed, deduplicated) data.
	TotalSize uint64 `json:"total_size"`
	// TotalUncompressedSize is that data before compression.
	TotalUncompressedSize uint64 `json:"total_uncompressed_size"`
	// CompressionRatio is TotalUncompressedSize / TotalSize.
	CompressionRatio float64 `json:"compression_ratio"`
	// BlobCount is the number of data blobs.
	BlobCount uint64 `json:"total_blob_count"`
	// SnapshotsCount is the number of snapshots.
	SnapshotsCount int `json:"snapshots_count"`
}

// Stats returns the repository's stored size and snapshot count.
func (r *Repo) Stats(ctx context.Context) (*Stats, error) {
	var s Stats
	if err := r.runJSON(ctx, &s, "stats", "--mode", "raw-data"); err != nil {
		return nil, err
	}
	return &s, nil
}
