package restic_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/repository/internal/testrepo"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

// snapshotTimes are the faked times of the snapshots each forget case
// starts from: days 1 to 6 of a week, local time, two on days 1 and 3.
var snapshotTimes = func() []time.Time {
	day := func(d, h int) time.Time { return time.Date(2025, time.March, 9+d, h, 0, 0, 0, time.Local) }
	return []time.Time{day(1, 10), day(1, 14), day(2, 10), day(3, 10), day(3, 20), day(4, 10), day(5, 10), day(6, 10)}
}()

func TestForgetKeepsWhatThePolicySays(t *testing.T) {
	env := testrepo.Start(t)
	repo := initRepo(t, env, "forget")
	untouched := backupAt(t, repo, "other", snapshotTimes[:2])

	tests := map[string]struct {
		// policy is applied to snapshots at snapshotTimes.
		policy restic.RetentionPolicy
		// keep are the indexes in snapshotTimes of the snapshots left.
		keep []int
	}{
		"last":           {policy: restic.RetentionPolicy{Last: 2}, keep: []int{6, 7}},
		"daily and last": {policy: restic.RetentionPolicy{Last: 1, Daily: 3}, keep: []int{5, 6, 7}},
		"within":         {policy: restic.RetentionPolicy{Within: "36h"}, keep: []int{6, 7}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tag := "case-" + strings.ReplaceAll(name, " ", "-")
			ids := backupAt(t, repo, tag, snapshotTimes)
			removed, err := repo.Forget(testContext(t), tc.policy, tag)
			if err != nil {
				t.Fatalf("forget: %v", err)
			}
			var wantKept, wantRemoved []string
			for i, id := range ids {
				if slices.Contains(tc.keep, i) {
					wantKept = append(wantKept, id)
				} else {
					wantRemoved = append(wantRemoved, id)
				}
			}
			assertSameIDs(t, "removed", removed, wantRemoved)
			assertSameIDs(t, "kept", snapshotIDs(t, repo, tag), wantKept)
		})
	}
	assertSameIDs(t, "snapshots of another tag", snapshotIDs(t, repo, "other"), untouched)
}

func TestForgetWithEmptyPolicyRemovesNothing(t *testing.T) {
	env := testrepo.Start(t)
	repo := initRepo(t, env, "forget-empty")
	ids := backupAt(t, repo, "t", snapshotTimes[:2])
	removed, err := repo.Forget(testContext(t), restic.RetentionPolicy{}, "t")
	if err != nil || len(removed) != 0 {
		t.Fatalf("forget with an empty policy: removed %v, %v; want nothing", removed, err)
	}
	assertSameIDs(t, "kept", snapshotIDs(t, repo, "t"), ids)
}

// backupAt makes one small snapshot per time, tagged tag, and returns their IDs.
func backupAt(t *testing.T, repo *restic.Repo, tag string, times []time.Time) []string {
	t.Helper()
	var ids []string
	for _, at := range times {
		opts := restic.BackupOptions{Filename: "db.dump", Host: "db-0", Tags: []string{tag}, Time: at}
		sum, err := repo.Backup(testContext(t), strings.NewReader("same data"), opts, nil)
		if err != nil {
			t.Fatalf("backup at %v: %v", at, err)
		}
		ids = append(ids, sum.SnapshotID)
	}
	return ids
}

func snapshotIDs(t *testing.T, repo *restic.Repo, tag string) []string {
	t.Helper()
	snaps, err := repo.Snapshots(testContext(t), tag)
	if err != nil {
		t.Fatalf("snapshots: %v", err)
	}
	var ids []string
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	return ids
}

func assertSameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}
