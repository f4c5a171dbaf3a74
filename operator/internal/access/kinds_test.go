package access

import (
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// TestNewAccounts checks who each kind of Job runs as for the flags, and
// that a ServiceAccount shared by several kinds has one set of rules that
// covers all of theirs.
func TestNewAccounts(t *testing.T) {
	tests := map[string]struct {
		// job and trigger are --job-service-account and
		// --trigger-service-account.
		job, trigger string
		// want are the names of Trigger, Backup, Restore, Retention,
		// Forget and Sync.
		want [6]string
	}{
		"defaults: one per kind": {
			want: [6]string{"keepsake-trigger", "keepsake-backup", "keepsake-restore", "keepsake-retention", "keepsake-forget", "keepsake-sync"},
		},
		"job service account: every kind but sync": {
			job:  "keepsake-job",
			want: [6]string{"keepsake-job", "keepsake-job", "keepsake-job", "keepsake-job", "keepsake-job", "keepsake-sync"},
		},
		"both set": {
			job: "backup-jobs", trigger: "backup-trigger",
			want: [6]string{"backup-trigger", "backup-jobs", "backup-jobs", "backup-jobs", "backup-jobs", "keepsake-sync"},
		},
		"trigger only": {
			trigger: "backup-trigger",
			want:    [6]string{"backup-trigger", "keepsake-backup", "keepsake-restore", "keepsake-retention", "keepsake-forget", "keepsake-sync"},
		},
		"trigger named as the backup default": {
			trigger: "keepsake-backup",
			want:    [6]string{"keepsake-backup", "keepsake-backup", "keepsake-restore", "keepsake-retention", "keepsake-forget", "keepsake-sync"},
		},
	}
	defaults := []Kind{Trigger, Backup, Restore, Retention, Forget, Sync}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := NewAccounts(tc.job, tc.trigger)
			kinds := a.all()
			for i, k := range kinds {
				if k.Name != tc.want[i] {
					t.Errorf("%s runs as %q, want %q", defaults[i].Name, k.Name, tc.want[i])
				}
				if !covers(k.Rules, defaults[i].Rules) {
					t.Errorf("%s (as %s): rules %+v do not cover its calls %+v", defaults[i].Name, k.Name, k.Rules, defaults[i].Rules)
				}
				for _, other := range kinds {
					if other.Name == k.Name && !equalRules(other.Rules, k.Rules) {
						t.Errorf("ServiceAccount %s has two sets of rules: %+v and %+v", k.Name, k.Rules, other.Rules)
					}
				}
			}
		})
	}
}

// covers reports whether rules allow every verb of want on its resources.
func covers(rules, want []rbacv1.PolicyRule) bool {
	for _, w := range want {
		for _, v := range w.Verbs {
			if !slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
				return slices.Equal(r.APIGroups, w.APIGroups) && slices.Equal(r.Resources, w.Resources) && slices.Contains(r.Verbs, v)
			}) {
				return false
			}
		}
	}
	return true
}
