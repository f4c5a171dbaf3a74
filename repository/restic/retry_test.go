package restic_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/repository/internal/testrepo"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

// retryNotes collects what OnStorageRetry hears.
type retryNotes struct {
	mu    sync.Mutex
	notes []string
	first chan struct{} // closed at the first retry
}

func newRetryNotes() *retryNotes { return &retryNotes{first: make(chan struct{})} }

func (n *retryNotes) hear(msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if msg != "" && !n.retried() {
		close(n.first)
	}
	n.notes = append(n.notes, msg)
}

func (n *retryNotes) retried() bool {
	select {
	case <-n.first:
		return true
	default:
		return false
	}
}

func (n *retryNotes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.notes...)
}

// TestBackupTellsOfStorageRetries: the storage is killed in the middle of
// a backup and comes back once restic says it retries. restic's retries
// reach OnStorageRetry with the connection's error, the success of a
// retried request reaches it as "", and the backup completes with every
// byte.
func TestBackupTellsOfStorageRetries(t *testing.T) {
	env := testrepo.Start(t)
	notes := newRetryNotes()
	cfg := env.Config(t, "retries")
	cfg.OnStorageRetry = notes.hear
	repo := restic.New(cfg)
	ctx := testContext(t)
	if err := repo.InitIfAbsent(ctx); err != nil {
		t.Fatal(err)
	}
	const size = 160 * MiB
	src := &stopAfter{r: testrepo.Stream(7, size), tripwire: tripwire{limit: 40 * MiB, stop: env.MinIO.Stop}}
	type result struct {
		sum *restic.BackupSummary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := repo.Backup(ctx, src, restic.BackupOptions{Filename: "db.dump"}, nil)
		done <- result{sum, err}
	}()

	select {
	case <-notes.first:
	case r := <-done:
		t.Fatalf("the backup ended (%+v, %v) before restic retried the stopped storage; heard %q", r.sum, r.err, notes.all())
	case <-ctx.Done():
		t.Fatalf("restic never said it retries the stopped storage; heard %q", notes.all())
	}
	env.MinIO.Restart(t)
	r := <-done
	if r.err != nil {
		t.Fatalf("backup after the storage came back: %v", r.err)
	}

	heard := notes.all()
	t.Logf("heard %d notes, the first: %q", len(heard), heard[0])
	if !strings.Contains(heard[0], "retrying after") || !strings.Contains(heard[0], "connection refused") {
		t.Errorf("first note %q: want restic's retry message with the connection's error", heard[0])
	}
	assertRecovered(t, heard)
	h := sha256.New()
	if err := repo.Dump(ctx, r.sum.SnapshotID, "db.dump", h); err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), testrepo.StreamHash(t, 7, size); got != want {
		t.Fatalf("dumped bytes differ: sha256 %s, want %s", got, want)
	}
}

// TestDumpTellsOfStorageRetries: the storage stops while a dump reads the
// snapshot; OnStorageRetry hears restic retry, and once the storage is
// back the dump gives every byte.
func TestDumpTellsOfStorageRetries(t *testing.T) {
	env := testrepo.Start(t)
	notes := newRetryNotes()
	cfg := env.Config(t, "dump-retries")
	repo := restic.New(cfg)
	ctx := testContext(t)
	if err := repo.InitIfAbsent(ctx); err != nil {
		t.Fatal(err)
	}
	const size = 200 * MiB
	sum, err := repo.Backup(ctx, testrepo.Stream(8, size), restic.BackupOptions{Filename: "db.dump"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnStorageRetry = notes.hear
	repo = restic.New(cfg)
	h := sha256.New()
	w := &stopAfterWrite{w: h, tripwire: tripwire{limit: 20 * MiB, stop: env.MinIO.Stop}}
	done := make(chan error, 1)
	go func() { done <- repo.Dump(ctx, sum.SnapshotID, "db.dump", w) }()
	select {
	case <-notes.first:
	case err := <-done:
		t.Fatalf("the dump ended (%v) before restic retried the stopped storage; heard %q", err, notes.all())
	case <-time.After(2 * time.Minute):
		t.Fatalf("restic never said it retries the stopped storage; heard %q", notes.all())
	}
	env.MinIO.Restart(t)
	if err := <-done; err != nil {
		t.Fatalf("dump after the storage came back: %v", err)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), testrepo.StreamHash(t, 8, size); got != want {
		t.Fatalf("dumped bytes differ: sha256 %s, want %s", got, want)
	}
	heard := notes.all()
	t.Logf("heard %d notes, the first: %q", len(heard), heard[0])
	if !strings.HasPrefix(heard[0], "Load(<data/") || !strings.Contains(heard[0], "retrying after") {
		t.Errorf("first note %q: want restic's retry of a data pack's load", heard[0])
	}
	assertRecovered(t, heard)
}

// assertRecovered fails unless a note said a retried request succeeded.
func assertRecovered(t *testing.T, heard []string) {
	t.Helper()
	for _, n := range heard {
		if n == "" {
			return
		}
	}
	t.Errorf("no note said a retried request succeeded: %q", heard)
}
