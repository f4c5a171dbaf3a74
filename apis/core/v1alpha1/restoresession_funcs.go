package v1alpha1

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// IsFinished reports whether the restore reached a phase it never leaves.
func (r *RestoreSession) IsFinished() bool {
	switch r.Status.Phase {
	case RestoreSucceeded, RestoreFailed, RestoreInvalid:
		return true
	}
	return false
}

// Timeout is the restoreTimeout, DefaultRestoreTimeout when unset.
func (r *RestoreSession) Timeout() time.Duration {
	if r.Spec.RestoreTimeout == nil || r.Spec.RestoreTimeout.Duration <= 0 {
		return DefaultRestoreTimeout
	}
	return r.Spec.RestoreTimeout.Duration
}

// RestoredSummary sums what the components' drivers restored, objects
// first, then items by unit: e.g. "2 databases, 120000 points"; "" when no
// driver said.
func (s *RestoreSessionStatus) RestoredSummary() string {
	objects, items := map[string]int64{}, map[string]int64{}
	for _, c := range s.Components {
		if c.Restored == nil {
			continue
		}
		if c.Restored.ObjectKind != "" {
			objects[c.Restored.ObjectKind] += c.Restored.ObjectCount
		}
		for _, it := range c.Restored.Items {
			items[it.Unit] += it.Count
		}
	}
	var parts []string
	for _, counts := range []map[string]int64{objects, items} {
		for _, unit := range slices.Sorted(maps.Keys(counts)) {
			parts = append(parts, fmt.Sprintf("%d %s", counts[unit], unit))
		}
	}
	return strings.Join(parts, ", ")
}
