package restic_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/repository/internal/testrepo"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// silentS3 listens on loopback, accepts every connection and reads from it
// without ever answering: an S3 endpoint that hangs. It returns its
// address.
func silentS3(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	return l.Addr().String()
}

func TestCallsEndAtTheirDeadlineWhenTheStorageNeverAnswers(t *testing.T) {
	const short = 3 * time.Second
	tests := map[string]struct {
		// call runs one restic command against the silent storage.
		call func(ctx context.Context, r *restic.Repo) error
		// op is the restic command the error must name.
		op string
	}{
		"snapshots": {op: "snapshots", call: func(ctx context.Context, r *restic.Repo) error { _, err := r.Snapshots(ctx); return err }},
		"init":      {op: "cat", call: func(ctx context.Context, r *restic.Repo) error { return r.InitIfAbsent(ctx) }},
		"forget":    {op: "forget", call: func(ctx context.Context, r *restic.Repo) error { return r.ForgetIDs(ctx, "abcdef12") }},
		"unlock":    {op: "unlock", call: func(ctx context.Context, r *restic.Repo) error { return r.Unlock(ctx) }},
		"stats":     {op: "stats", call: func(ctx context.Context, r *restic.Repo) error { _, err := r.Stats(ctx); return err }},
		"locks":     {op: "list", call: func(ctx context.Context, r *restic.Repo) error { _, err := r.Locks(ctx); return err }},
		"prune":     {op: "prune", call: func(ctx context.Context, r *restic.Repo) error { return r.Prune(ctx) }},
		"check":     {op: "check", call: func(ctx context.Context, r *restic.Repo) error { return r.Check(ctx, "") }},
	}
	addr := silentS3(t)
	binary := servers.Bin(t, "restic")
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			repo := restic.New(restic.Config{
				Binary: binary, Repository: "s3:http://" + addr + "/bucket/repo",
				PasswordFile: testrepo.PasswordFile(t, "secret"), CacheDir: t.TempDir(),
				Env:       []string{"AWS_ACCESS_KEY_ID=key", "AWS_SECRET_ACCESS_KEY=secret"},
				Deadlines: restic.Deadlines{Short: short, Long: short},
			})
			// The test's own bound is far beyond the call's deadline: only
			// the deadline can end the call in time.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := tc.call(ctx, repo)
			var timeout *restic.TimeoutError
			if !errors.As(err, &timeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want a *TimeoutError after %v", err, short)
			}
			if ctx.Err() != nil {
				t.Fatalf("the test's context ended first: %v", err)
			}
			want := "restic " + tc.op + " did not answer within 3s: is the storage reachable?"
			if !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("error %q: want it to start with %q", err, want)
			}
		})
	}
}
