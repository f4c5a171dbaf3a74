package access

import (
	"context"
	"maps"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SyncServiceAccount is the ServiceAccount repository sync Jobs run as, in
// each namespace holding Repositories: sync creates Snapshot objects, which
// no other Job may.
const SyncServiceAccount = "keepsake-sync"

// SyncRules are the sync Role's permissions: read the Repositories and
// Snapshots, create Snapshots and write their status. It can delete
// nothing.
func SyncRules() []rbacv1.PolicyRule {
	const storage = "storage.keepsake.dev"
	return []rbacv1.PolicyRule{
		{APIGroups: []string{storage}, Resources: []string{"repositories"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{storage}, Resources: []string{"repositories/status"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{storage}, Resources: []string{"snapshots"}, Verbs: []string{"get", "list", "create"}},
		{APIGroups: []string{storage}, Resources: []string{"snapshots/status"}, Verbs: []string{"get", "update"}},
	}
}

// EnsureSync makes SyncServiceAccount, its Role and RoleBinding exist in
// namespace ns.
func (p *Provisioner) EnsureSync(ctx context.Context, ns string) error {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: SyncServiceAccount, Labels: maps.Clone(labels)}
	}
	key := "sync:" + ns
	sa, err := p.serviceAccount(ctx, meta())
	if err != nil {
		return err
	}
	if uid, ok := p.done.Load(key); ok && uid == sa.UID {
		return nil
	}
	if err := p.ensureRole(ctx, &rbacv1.Role{ObjectMeta: meta(), Rules: SyncRules()}); err != nil {
		return err
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: meta(),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: SyncServiceAccount},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: SyncServiceAccount, Namespace: ns}},
	}
	if err := p.create(ctx, binding); err != nil {
		return err
	}
	p.done.Store(key, sa.UID)
	return nil
}
