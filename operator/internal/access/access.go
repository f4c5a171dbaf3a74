// Package access gives each namespace where Keepsake runs Jobs one
// ServiceAccount per kind of Job (kinds.go), each bound to a Role holding
// exactly the API calls that kind's runtime command makes: the trigger
// creates BackupSessions, a backup Job writes its Snapshots' status, a
// restore Job its RestoreSession's, retention deletes the Snapshots it
// forgot, sync creates discovered Snapshots, forget calls nothing.
package access

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The operator grants the rules of every Kind, so it must hold them itself
// (Kubernetes refuses to let anyone grant more than they have).
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;create
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;create;update
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupconfigurations,verbs=get
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=backupsessions,verbs=create
// +kubebuilder:rbac:groups=core.keepsake.dev,resources=restoresessions/status,verbs=patch
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots,verbs=get;list;create;patch;delete
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=snapshots/status,verbs=patch;update
// +kubebuilder:rbac:groups=storage.keepsake.dev,resources=repositories/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get

// labels mark what the operator made.
var labels = map[string]string{"app.kubernetes.io/managed-by": "keepsake", "app.kubernetes.io/component": "job-access"}

// Provisioner creates the ServiceAccount, Role and RoleBinding of a kind of
// Job in a namespace, and repairs a Role whose rules were changed. It reads the
// ServiceAccount on every call: a namespace deleted and re-created under the
// same name (as `make demo` does) holds none of them any more, so "made
// once" cannot be remembered by name. What it remembers is the UID of the
// ServiceAccount it last saw complete with Role and RoleBinding.
type Provisioner struct {
	// Client writes; Reader reads past the cache, so the operator needs no
	// informer on every ServiceAccount and Role of the cluster.
	Client client.Client
	Reader client.Reader

	done sync.Map // namespace/name -> types.UID of the ServiceAccount
}

// Ensure makes kind's ServiceAccount usable by Jobs in namespace ns: the
// ServiceAccount, and when the kind has rules its Role (put back if its
// rules were changed) and RoleBinding.
func (p *Provisioner) Ensure(ctx context.Context, ns string, kind Kind) error {
	key := ns + "/" + kind.Name
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: kind.Name, Labels: maps.Clone(labels)}
	}
	sa, err := p.serviceAccount(ctx, meta())
	if err != nil {
		return err
	}
	if uid, ok := p.done.Load(key); ok && uid == sa.UID {
		return nil
	}
	if kind.NeedsToken() {
		if err := p.bind(ctx, meta, kind); err != nil {
			return err
		}
	}
	p.done.Store(key, sa.UID)
	return nil
}

// bind makes kind's Role and its RoleBinding to kind's ServiceAccount.
func (p *Provisioner) bind(ctx context.Context, meta func() metav1.ObjectMeta, kind Kind) error {
	if err := p.ensureRole(ctx, &rbacv1.Role{ObjectMeta: meta(), Rules: kind.Rules}); err != nil {
		return err
	}
	m := meta()
	return p.create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: m,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: kind.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: kind.Name, Namespace: m.Namespace}},
	})
}

// serviceAccount reads the ServiceAccount past the cache, creating it when
// it is missing.
func (p *Provisioner) serviceAccount(ctx context.Context, meta metav1.ObjectMeta) (*corev1.ServiceAccount, error) {
	var sa corev1.ServiceAccount
	err := p.Reader.Get(ctx, client.ObjectKey{Namespace: meta.Namespace, Name: meta.Name}, &sa)
	if err == nil {
		return &sa, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get ServiceAccount %s/%s: %w", meta.Namespace, meta.Name, err)
	}
	sa = corev1.ServiceAccount{ObjectMeta: meta}
	if err := p.Client.Create(ctx, &sa); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create ServiceAccount %s/%s: %w", meta.Namespace, meta.Name, err)
		}
		// Made by a concurrent pass: its UID is read on the next call.
		return &corev1.ServiceAccount{}, nil
	}
	return &sa, nil
}

func (p *Provisioner) create(ctx context.Context, obj client.Object) error {
	err := p.Client.Create(ctx, obj)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// ensureRole creates the Role, or puts its rules back.
func (p *Provisioner) ensureRole(ctx context.Context, want *rbacv1.Role) error {
	var have rbacv1.Role
	err := p.Reader.Get(ctx, client.ObjectKeyFromObject(want), &have)
	if apierrors.IsNotFound(err) {
		return p.create(ctx, want)
	}
	if err != nil {
		return fmt.Errorf("get Role %s/%s: %w", want.Namespace, want.Name, err)
	}
	if slices.EqualFunc(have.Rules, want.Rules, equalRule) {
		return nil
	}
	have.Rules = want.Rules
	if err := p.Client.Update(ctx, &have); err != nil {
		return fmt.Errorf("update Role %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

func equalRule(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) &&
		slices.Equal(a.Verbs, b.Verbs) && slices.Equal(a.ResourceNames, b.ResourceNames) &&
		slices.Equal(a.NonResourceURLs, b.NonResourceURLs)
}
