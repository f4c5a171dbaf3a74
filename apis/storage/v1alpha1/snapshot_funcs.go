package v1alpha1

import "time"

// TakenAt is when the Snapshot's data was taken, or its creation until it
// records that.
func (s *Snapshot) TakenAt() time.Time {
	if s.Status.SnapshotTime != nil {
		return s.Status.SnapshotTime.Time
	}
	return s.CreationTimestamp.Time
}

// NewerThan reports whether s was taken after o. Of two taken at the same
// time, the one whose name sorts last is the newer, so that "newest" names
// one Snapshot whatever order they are listed in.
func (s *Snapshot) NewerThan(o *Snapshot) bool {
	ts, to := s.TakenAt(), o.TakenAt()
	if !ts.Equal(to) {
		return ts.After(to)
	}
	return s.Name > o.Name
}

// LatestSucceeded returns the newest Succeeded Snapshot of Repository repo
// among snaps that is not being deleted, nil when there is none.
func LatestSucceeded(snaps []Snapshot, repo string) *Snapshot {
	var newest *Snapshot
	for i := range snaps {
		s := &snaps[i]
		if s.Spec.Repository != repo || s.Status.Phase != SnapshotSucceeded || !s.DeletionTimestamp.IsZero() {
			continue
		}
		if newest == nil || s.NewerThan(newest) {
			newest = s
		}
	}
	return newest
}
