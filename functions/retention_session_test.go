package functions

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// sessionBackups makes n snapshots tagged as `keepsake run backup` tags
// them for session of configuration, spaced every apart and oldest first
// (so the last one is at `end`), and returns their IDs.
func sessionBackups(t *testing.T, repo *restic.Repo, configuration, session string, n int, every time.Duration, end time.Time) []string {
	t.Helper()
	ctx := context.Background()
	if err := repo.InitIfAbsent(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		opts := restic.BackupOptions{Filename: "dump", Host: "prod/db", Tags: snapshotTags("dump", configuration, session),
			Time: end.Add(-time.Duration(n-1-i) * every)}
		sum, err := repo.Backup(ctx, strings.NewReader(session+strings.Repeat(" data", i+1)), opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sum.SnapshotID)
	}
	return ids
}

// TestRetentionPerSession: an hourly session (last: 2) and a daily one
// share a repository, as the same component of the same target. The
// hourly session's retention must forget only its own snapshots: grouped
// by host and path alone, it forgot every daily snapshot but the newest
// two, across sessions, and of another configuration's session of the
// same name as well.
func TestRetentionPerSession(t *testing.T) {
	s := newStorageStand(t)
	spec := s.repo(t, "shared")
	repo := s.resticRepo(t, spec)
	now := time.Now()
	daily := sessionBackups(t, repo, "db-backup", "daily", 3, 24*time.Hour, now.Add(-30*time.Minute))
	hourly := sessionBackups(t, repo, "db-backup", "hourly", 4, time.Hour, now)
	otherConfig := sessionBackups(t, repo, "other-backup", "hourly", 3, time.Hour, now.Add(-10*time.Minute))

	env := []string{"KEEPSAKE_KEEP_LAST=2", "KEEPSAKE_SESSION=hourly", "KEEPSAKE_CONFIGURATION=db-backup"}
	out, _ := keepsake(t, 0, env, "run", "retention", "--repository", specFlag(spec), "--restic", servers.Bin(t, "restic"),
		"--cache-dir", filepath.Join(s.dir, "cache"))
	res := event[RetentionResult](t, out, "retention")
	if !sameIDs(res.Removed, hourly[:2]) {
		t.Errorf("removed %v, want only the two oldest hourly snapshots %v", res.Removed, hourly[:2])
	}
	var left []string
	for _, snap := range s.snapshots(t, spec) {
		left = append(left, snap.ID)
	}
	want := append(append(append([]string{}, daily...), hourly[2:]...), otherConfig...)
	if !sameIDs(left, want) {
		t.Fatalf("restic lists %v, want every daily snapshot %v, the newest hourly %v and the other configuration's %v",
			left, daily, hourly[2:], otherConfig)
	}
}
