package access

import (
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// Kind is the identity of one kind of Job: the name of its ServiceAccount,
// Role and RoleBinding in each namespace, and the Role's rules, which are
// exactly the API calls the Job's runtime command makes (functions/kube*.go
// and functions/trigger.go, functions/sync.go).
type Kind struct {
	// Name of the ServiceAccount, its Role and its RoleBinding.
	Name string
	// Rules of the Role. A Kind without rules makes no API call: it gets a
	// ServiceAccount of its own, no Role, and no token in its pods.
	Rules []rbacv1.PolicyRule
}

// NeedsToken reports whether the Kind's pods call the API server, and so
// need their ServiceAccount's token mounted.
func (k Kind) NeedsToken() bool { return len(k.Rules) > 0 }

var (
	coreGroup    = corev1alpha1.GroupVersion.Group
	storageGroup = storagev1alpha1.GroupVersion.Group
)

func rule(group, resource string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
}

// podsRule lets a Job that runs restic ask whether the pod a repository
// lock names has ended, so that the lock of a killed Job is removed
// without a human (functions/locks.go).
var podsRule = rule("", "pods", "get")

// The kinds of Job, as they are when no ServiceAccount is set by flag.
var (
	// Trigger is `keepsake trigger`, the CronJobs' pods: it reads the
	// BackupConfiguration (for its UID, the new session's owner) and
	// creates one BackupSession. It cannot read or touch a Snapshot.
	Trigger = Kind{Name: "keepsake-trigger", Rules: []rbacv1.PolicyRule{
		rule(coreGroup, "backupconfigurations", "get"),
		rule(coreGroup, "backupsessions", "create"),
	}}
	// Backup is `keepsake run backup`: it lists its session's Snapshots
	// (by label), reads a Snapshot's parent (its size is the estimated
	// total of the progress) and patches their status. It can delete
	// nothing.
	Backup = Kind{Name: "keepsake-backup", Rules: []rbacv1.PolicyRule{
		rule(storageGroup, "snapshots", "get", "list"),
		rule(storageGroup, "snapshots/status", "patch"),
		podsRule,
	}}
	// Restore is `keepsake run restore`: it reads its RestoreSession (the
	// summed progress is computed from the components read) and patches
	// its status, and nothing else.
	Restore = Kind{Name: "keepsake-restore", Rules: []rbacv1.PolicyRule{
		rule(coreGroup, "restoresessions", "get"),
		rule(coreGroup, "restoresessions/status", "patch"),
		podsRule,
	}}
	// Retention is `keepsake run retention`: it lists the Snapshots of the
	// namespace, marks those whose restic snapshots it forgot (a metadata
	// patch) and deletes them.
	Retention = Kind{Name: "keepsake-retention", Rules: []rbacv1.PolicyRule{
		rule(storageGroup, "snapshots", "list", "patch", "delete"),
		podsRule,
	}}
	// Forget is `keepsake run forget`, run for a Snapshot being deleted:
	// it removes the locks of ended Jobs and, when a live lock makes it
	// wait, says so on the Snapshot (condition WaitingForLock). It can
	// delete nothing.
	Forget = Kind{Name: "keepsake-forget", Rules: []rbacv1.PolicyRule{
		rule(storageGroup, "snapshots", "list"),
		rule(storageGroup, "snapshots/status", "patch"),
		podsRule,
	}}
	// Sync is `keepsake run sync`: it lists the Snapshots, creates the
	// discovered ones (reading one back that an interrupted sync made) and
	// writes their status. It can delete nothing.
	Sync = Kind{Name: "keepsake-sync", Rules: []rbacv1.PolicyRule{
		rule(storageGroup, "snapshots", "get", "list", "create"),
		rule(storageGroup, "snapshots/status", "update"),
		rule(storageGroup, "repositories/status", "get", "patch"),
		podsRule,
	}}
)

// Accounts are the identities the operator's Jobs run as, one per kind.
type Accounts struct {
	Trigger, Backup, Restore, Retention, Forget, Sync Kind
}

// NewAccounts returns the identities of the Jobs. By default each kind has
// its own (Trigger, Backup, ...). job, when set (--job-service-account),
// names one ServiceAccount that every kind but Sync runs as, as all did
// before each kind had its own; trigger, when set
// (--trigger-service-account), names the trigger pods'. A ServiceAccount
// that several kinds share gets a Role holding all of their rules.
func NewAccounts(job, trigger string) Accounts {
	a := Accounts{Trigger: Trigger, Backup: Backup, Restore: Restore, Retention: Retention, Forget: Forget, Sync: Sync}
	if job != "" {
		for _, k := range []*Kind{&a.Trigger, &a.Backup, &a.Restore, &a.Retention, &a.Forget} {
			k.Name = job
		}
	}
	if trigger != "" {
		a.Trigger.Name = trigger
	}
	a.share()
	return a
}

// share gives every kind the union of the rules of the kinds with the same
// name, so that one ServiceAccount has one Role that serves them all.
func (a *Accounts) share() {
	kinds := a.all()
	byName := map[string][]rbacv1.PolicyRule{}
	count := map[string]int{}
	for _, k := range kinds {
		byName[k.Name] = append(byName[k.Name], k.Rules...)
		count[k.Name]++
	}
	for _, k := range kinds {
		if count[k.Name] > 1 {
			k.Rules = mergeRules(byName[k.Name])
		}
	}
}

func (a *Accounts) all() []*Kind {
	return []*Kind{&a.Trigger, &a.Backup, &a.Restore, &a.Retention, &a.Forget, &a.Sync}
}

// mergeRules joins rules of one API group and resource into one rule with
// the union of their verbs, in a stable order.
func mergeRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		i := slices.IndexFunc(out, func(o rbacv1.PolicyRule) bool {
			return slices.Equal(o.APIGroups, r.APIGroups) && slices.Equal(o.Resources, r.Resources)
		})
		if i < 0 {
			out = append(out, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: r.Resources})
			i = len(out) - 1
		}
		for _, v := range r.Verbs {
			if !slices.Contains(out[i].Verbs, v) {
				out[i].Verbs = append(out[i].Verbs, v)
			}
		}
	}
	slices.SortFunc(out, func(a, b rbacv1.PolicyRule) int {
		return strings.Compare(a.APIGroups[0]+"/"+a.Resources[0], b.APIGroups[0]+"/"+b.Resources[0])
	})
	for i := range out {
		slices.Sort(out[i].Verbs)
	}
	return out
}
