package restic_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/repository/internal/testrepo"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

const MiB = 1 << 20

// testTimeout bounds every restic call of a test: generous for 2 cores.
const testTimeout = 3 * time.Minute

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// initRepo returns an initialised repository dir on env.
func initRepo(t *testing.T, env *testrepo.Env, dir string) *restic.Repo {
	t.Helper()
	repo := restic.New(env.Config(t, dir))
	if err := repo.InitIfAbsent(testContext(t)); err != nil {
		t.Fatalf("init %s: %v", dir, err)
	}
	return repo
}

func TestInitIfAbsentIsIdempotent(t *testing.T) {
	env := testrepo.Start(t)
	ctx := testContext(t)
	cfg := env.Config(t, "init")
	repo := restic.New(cfg)

	if _, err := repo.Snapshots(ctx); !errors.Is(err, restic.ErrRepositoryMissing) {
		t.Fatalf("snapshots before init: got %v, want ErrRepositoryMissing", err)
	}
	for i := range 2 {
		if err := repo.InitIfAbsent(ctx); err != nil {
			t.Fatalf("init #%d: %v", i+1, err)
		}
	}
	if snaps, err := repo.Snapshots(ctx); err != nil || len(snaps) != 0 {
		t.Fatalf("snapshots after init: %v, %v; want none", snaps, err)
	}

	cfg.PasswordFile = testrepo.PasswordFile(t, "not the password")
	err := restic.New(cfg).InitIfAbsent(ctx)
	if !errors.Is(err, restic.ErrWrongPassword) {
		t.Fatalf("init with another password: got %v, want ErrWrongPassword", err)
	}
}

func TestWrongPassword(t *testing.T) {
	env := testrepo.Start(t)
	ctx := testContext(t)
	initRepo(t, env, "pw")
	cfg := env.Config(t, "pw")
	cfg.PasswordFile = testrepo.PasswordFile(t, "wrong")
	repo := restic.New(cfg)

	_, err := repo.Backup(ctx, strings.NewReader("data"), restic.BackupOptions{Filename: "f"}, nil)
	if !errors.Is(err, restic.ErrWrongPassword) {
		t.Fatalf("backup: got %v, want ErrWrongPassword", err)
	}
	if _, err := repo.Snapshots(ctx); !errors.Is(err, restic.ErrWrongPassword) {
		t.Fatalf("snapshots: got %v, want ErrWrongPassword", err)
	}
}

func TestBackupThenDumpReturnsTheSameBytes(t *testing.T) {
	env := testrepo.Start(t)
	repo := initRepo(t, env, "roundtrip")
	sizes := map[string]int64{"one-byte": 1, "small": 1000, "few-MiB": 5*MiB + 17, "over-100MiB": 110*MiB + 3}
	for name, size := range sizes {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			var calls int
			var last restic.Progress
			opts := restic.BackupOptions{Filename: name + ".dump", Host: "db-0", Tags: []string{"keepsake", name}}
			sum, err := repo.Backup(ctx, testrepo.Stream(uint64(size), size), opts, func(p restic.Progress) { calls++; last = p })
			if err != nil {
				t.Fatalf("backup: %v", err)
			}
			if sum.SnapshotID == "" || sum.TotalBytesProcessed != uint64(size) {
				t.Fatalf("summary %+v: want a snapshot ID and %d bytes processed", sum, size)
			}
			if calls == 0 || last.BytesDone != uint64(size) {
				t.Fatalf("progress: %d calls, last %+v; want a final report of %d bytes", calls, last, size)
			}
			h := sha256.New()
			if err := repo.Dump(ctx, sum.SnapshotID, opts.Filename, h); err != nil {
				t.Fatalf("dump: %v", err)
			}
			if got, want := hex.EncodeToString(h.Sum(nil)), testrepo.StreamHash(t, uint64(size), size); got != want {
				t.Fatalf("dumped bytes differ: sha256 %s, want %s", got, want)
			}
			snaps, err := repo.Snapshots(ctx, "keepsake", name)
			if err != nil || len(snaps) != 1 || snaps[0].ID != sum.SnapshotID || snaps[0].Hostname != "db-0" {
				t.Fatalf("snapshots tagged %s: %+v, %v; want just %s on host db-0", name, snaps, err, sum.SnapshotID)
			}
		})
	}
}

func TestBackupOfEmptyInputIsRefused(t *testing.T) {
	env := testrepo.Start(t)
	repo := initRepo(t, env, "empty")
	_, err := repo.Backup(testContext(t), strings.NewReader(""), restic.BackupOptions{Filename: "f"}, nil)
	if !errors.Is(err, restic.ErrEmptyInput) {
		t.Fatalf("backup of nothing: got %v, want ErrEmptyInput", err)
	}
	assertNoSnapshots(t, repo)
	assertLaterBackupWorks(t, repo)
}

// failingWriter accepts limit bytes, then fails with err.
type failingWriter struct {
	limit int64
	err   error
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.limit -= int64(len(p)); f.limit < 0 {
		return 0, f.err
	}
	return len(p), nil
}

func TestDumpReturnsTheWritersError(t *testing.T) {
	env := testrepo.Start(t)
	ctx := testContext(t)
	repo := initRepo(t, env, "dump-fail")
	sum, err := repo.Backup(ctx, testrepo.Stream(5, 20*MiB), restic.BackupOptions{Filename: "f"}, nil)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	restoreFailed := errors.New("driver: restore failed")
	err = repo.Dump(ctx, sum.SnapshotID, "f", &failingWriter{limit: 2 * MiB, err: restoreFailed})
	if !errors.Is(err, restoreFailed) {
		t.Fatalf("dump: got %v, want the writer's error", err)
	}
	if err := repo.Dump(ctx, sum.SnapshotID, "missing", io.Discard); err == nil {
		t.Fatal("dump of a file the snapshot lacks succeeded")
	}
}

// failingReader yields data, then fails with err after limit bytes.
type failingReader struct {
	r     io.Reader
	limit int64
	err   error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.limit <= 0 {
		return 0, f.err
	}
	n, err := f.r.Read(p[:min(int64(len(p)), f.limit)])
	f.limit -= int64(n)
	return n, err
}

func TestBackupReaderFailureLeavesNoSnapshot(t *testing.T) {
	env := testrepo.Start(t)
	ctx := testContext(t)
	repo := initRepo(t, env, "failing")
	dumpFailed := errors.New("driver: dump failed")

	src := &failingReader{r: testrepo.Stream(1, 64*MiB), limit: 12 * MiB, err: dumpFailed}
	_, err := repo.Backup(ctx, src, restic.BackupOptions{Filename: "db.dump"}, nil)
	if !errors.Is(err, dumpFailed) {
		t.Fatalf("backup: got %v, want the reader's error", err)
	}
	assertNoSnapshots(t, repo)
	assertLaterBackupWorks(t, repo)
}

// blockingReader yields limit bytes, then blocks until released, as a
// stalled dump does.
type blockingReader struct {
	r        io.Reader
	limit    int64
	reached  chan struct{}
	release  chan struct{}
	reachedO sync.Once
}

func newBlockingReader(t *testing.T, limit int64) *blockingReader {
	b := &blockingReader{r: testrepo.Stream(2, limit), limit: limit,
		reached: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { close(b.release) })
	return b
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if b.limit <= 0 {
		b.reachedO.Do(func() { close(b.reached) })
		<-b.release
		return 0, io.ErrUnexpectedEOF
	}
	n, err := b.r.Read(p[:min(int64(len(p)), b.limit)])
	b.limit -= int64(n)
	return n, err
}

func TestBackupContextCancelLeavesNoSnapshot(t *testing.T) {
	env := testrepo.Start(t)
	repo := initRepo(t, env, "cancel")
	ctx, cancel := context.WithCancel(testContext(t))
	src := newBlockingReader(t, 8*MiB)
	go func() { <-src.reached; cancel() }()

	start := time.Now()
	_, err := repo.Backup(ctx, src, restic.BackupOptions{Filename: "db.dump"}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("backup: got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("backup returned %v after cancel: want promptly", d)
	}
	assertNoSnapshots(t, repo)
	if err := repo.Unlock(testContext(t)); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	assertLaterBackupWorks(t, repo)
}

func assertNoSnapshots(t *testing.T, repo *restic.Repo) {
	t.Helper()
	snaps, err := repo.Snapshots(testContext(t))
	if err != nil || len(snaps) != 0 {
		t.Fatalf("snapshots after a failed backup: %+v, %v; want none", snaps, err)
	}
}

func assertLaterBackupWorks(t *testing.T, repo *restic.Repo) {
	t.Helper()
	ctx := testContext(t)
	sum, err := repo.Backup(ctx, testrepo.Stream(3, 3*MiB), restic.BackupOptions{Filename: "db.dump"}, nil)
	if err != nil {
		t.Fatalf("backup after a failed one: %v", err)
	}
	if err := repo.Check(ctx, "100%"); err != nil {
		t.Fatalf("check: %v", err)
	}
	snaps, err := repo.Snapshots(ctx)
	if err != nil || len(snaps) != 1 || snaps[0].ID != sum.SnapshotID {
		t.Fatalf("snapshots: %+v, %v; want only %s", snaps, err, sum.SnapshotID)
	}
}

func TestStaleLockIsClearedByUnlock(t *testing.T) {
	env := testrepo.Start(t)
	ctx := testContext(t)
	repo := initRepo(t, env, "lock")

	// A backup killed while reading leaves its lock behind, as a crashed
	// Job would. restic locks before it reads its input.
	cctx, cancel := context.WithCancel(ctx)
	src := newBlockingReader(t, 2*MiB)
	go func() { <-src.reached; cancel() }()
	if _, err := repo.Backup(cctx, src, restic.BackupOptions{Filename: "db.dump"}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("backup: got %v, want context.Canceled", err)
	}
	if locks, err := repo.Locks(ctx); err != nil || len(locks) != 1 {
		t.Fatalf("locks after a killed backup: %v, %v; want one", locks, err)
	}
	if err := repo.Prune(ctx); !errors.Is(err, restic.ErrLocked) {
		t.Fatalf("prune with a stale lock: got %v, want ErrLocked", err)
	}

	if err := repo.Unlock(ctx); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if locks, err := repo.Locks(ctx); err != nil || len(locks) != 0 {
		t.Fatalf("locks after unlock: %v, %v; want none", locks, err)
	}
	if err := repo.Prune(ctx); err != nil {
		t.Fatalf("prune after unlock: %v", err)
	}
}

func TestBackupWhenStorageStopsIsUnreachable(t *testing.T) {
	t.Parallel() // mostly waits for its context
	env := testrepo.Start(t)
	repo := initRepo(t, env, "outage")
	// restic retries a failing storage for up to 15 minutes: the context is
	// what bounds the call.
	const bound = 20 * time.Second
	ctx, cancel := context.WithTimeout(testContext(t), bound)
	defer cancel()
	src := &stopAfter{r: testrepo.Stream(4, 1<<30), tripwire: tripwire{limit: 40 * MiB, stop: env.MinIO.Stop}}

	start := time.Now()
	_, err := repo.Backup(ctx, src, restic.BackupOptions{Filename: "db.dump"}, nil)
	if !errors.Is(err, restic.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("backup: got %v, want ErrUnreachable after the deadline", err)
	}
	t.Logf("backup during the outage: %v", err)
	if d := time.Since(start); d > bound+30*time.Second {
		t.Fatalf("backup returned after %v: want it bounded by its %v context", d, bound)
	}

	env.MinIO.Restart(t)
	assertNoSnapshots(t, repo)
}

// tripwire calls stop once, when limit bytes have passed.
type tripwire struct {
	limit int64
	stop  func()
}

func (w *tripwire) pass(n int) {
	if w.limit -= int64(n); w.limit <= 0 && w.stop != nil {
		w.stop()
		w.stop = nil
	}
}

// stopAfter reads through r and trips its wire on the way.
type stopAfter struct {
	r io.Reader
	tripwire
}

func (s *stopAfter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.pass(n)
	return n, err
}

// stopAfterWrite writes through to w and trips its wire on the way.
type stopAfterWrite struct {
	w io.Writer
	tripwire
}

func (s *stopAfterWrite) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.pass(n)
	return n, err
}

func TestStatsCountsSnapshots(t *testing.T) {
	env := testrepo.Start(t)
	ctx := testContext(t)
	repo := initRepo(t, env, "stats")
	for i := range 2 {
		if _, err := repo.Backup(ctx, testrepo.Stream(uint64(i), MiB), restic.BackupOptions{Filename: "f"}, nil); err != nil {
			t.Fatalf("backup: %v", err)
		}
	}
	st, err := repo.Stats(ctx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if st.SnapshotsCount != 2 || st.TotalSize < 2*MiB || st.TotalUncompressedSize < 2*MiB {
		t.Fatalf("stats %+v: want 2 snapshots and at least 2 MiB of incompressible data", st)
	}
}

func TestSnapshotsFilterByAllTags(t *testing.T) {
	env := testrepo.Start(t)
	ctx := testContext(t)
	repo := initRepo(t, env, "tags")
	var ids []string
	for _, tags := range [][]string{{"a"}, {"a", "b"}, {"b"}} {
		sum, err := repo.Backup(ctx, strings.NewReader("x"), restic.BackupOptions{Filename: "f", Tags: tags}, nil)
		if err != nil {
			t.Fatalf("backup: %v", err)
		}
		ids = append(ids, sum.SnapshotID)
	}
	snaps, err := repo.Snapshots(ctx, "a", "b")
	if err != nil || len(snaps) != 1 || snaps[0].ID != ids[1] || !slices.Equal(snaps[0].Tags, []string{"a", "b"}) {
		t.Fatalf("snapshots tagged a and b: %+v, %v; want only %s", snaps, err, ids[1])
	}
}
