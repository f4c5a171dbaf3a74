package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLatestSucceeded(t *testing.T) {
	at := func(h int) *metav1.Time { return &metav1.Time{Time: time.Date(2026, 12, 1, h, 0, 0, 0, time.UTC)} }
	snap := func(name, repo string, phase SnapshotPhase, taken *metav1.Time) Snapshot {
		return Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: SnapshotSpec{Repository: repo},
			Status: SnapshotStatus{Phase: phase, SnapshotTime: taken}}
	}
	deleting := snap("deleting", "db", SnapshotSucceeded, at(9))
	deleting.DeletionTimestamp = at(10)
	tests := map[string]struct {
		// snaps are the namespace's Snapshots.
		snaps []Snapshot
		// want is the name of the newest Succeeded one of repository db.
		want string
	}{
		"none":                    {snaps: []Snapshot{snap("failed", "db", SnapshotFailed, at(5))}},
		"newest by snapshot time": {snaps: []Snapshot{snap("b", "db", SnapshotSucceeded, at(2)), snap("a", "db", SnapshotSucceeded, at(3))}, want: "a"},
		"other repositories, failed and deleting ones skipped": {snaps: []Snapshot{
			snap("old", "db", SnapshotSucceeded, at(1)), snap("other", "wal", SnapshotSucceeded, at(8)),
			snap("failed", "db", SnapshotFailed, at(8)), deleting,
		}, want: "old"},
		"a tie goes to the name that sorts last, in any order": {snaps: []Snapshot{
			snap("y", "db", SnapshotSucceeded, at(4)), snap("z", "db", SnapshotSucceeded, at(4)), snap("x", "db", SnapshotSucceeded, at(4)),
		}, want: "z"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := LatestSucceeded(tc.snaps, "db")
			if (got == nil) != (tc.want == "") || (got != nil && got.Name != tc.want) {
				t.Errorf("LatestSucceeded = %v, want %q", got, tc.want)
			}
		})
	}
}
