package backupconfiguration

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/sessionrepo"
)

// ensureRepositories creates or updates the Repository of every session
// repository. A Repository of the same name that this configuration does
// not own is used as is when it points at the same place, and is a conflict
// otherwise.
func (r *Reconciler) ensureRepositories(ctx context.Context, p *pass) (*ctrl.Result, error) {
	want, prob := desiredRepositories(p.bc)
	if prob != nil {
		r.setCondition(p, corev1alpha1.ConditionRepositoryReady, prob, "", "")
		return r.fail(p, prob), nil
	}
	for _, name := range sortedKeys(want) {
		prob, err := r.ensureRepository(ctx, p, name, want[name])
		if err != nil {
			return nil, err
		}
		if prob != nil {
			r.setCondition(p, corev1alpha1.ConditionRepositoryReady, prob, "", "")
			return r.fail(p, prob), nil
		}
	}
	r.setCondition(p, corev1alpha1.ConditionRepositoryReady, nil, corev1alpha1.ReasonRepositoriesReady,
		fmt.Sprintf("%d repositories in place", len(want)))
	return nil, nil
}

// desiredRepositories returns the spec of each Repository by session
// repository name; two sessions naming one repository must describe it
// alike.
func desiredRepositories(bc *corev1alpha1.BackupConfiguration) (map[string]storagev1alpha1.RepositorySpec, *problem) {
	want := map[string]storagev1alpha1.RepositorySpec{}
	for _, s := range bc.Spec.Sessions {
		for _, ri := range s.Repositories {
			spec := sessionrepo.Spec(bc, ri)
			if old, seen := want[ri.Name]; seen && !sameRepository(old, spec) {
				return nil, invalid(corev1alpha1.ReasonRepositoryConflict,
					"session %s: repository %s is described differently by another session", s.Name, ri.Name)
			}
			want[ri.Name] = spec
		}
	}
	return want, nil
}

// ensureRepository creates the Repository that holds the session
// repository's location, as sessionrepo.Resolve names it (the
// BackupSessions write where it says): Repository name, or when the
// configuration moved it, the Repository that takes over the new location
// while the old one stays with its Snapshots. One this configuration
// created is adopted; one it did not create is used as is.
func (r *Reconciler) ensureRepository(ctx context.Context, p *pass, name string, spec storagev1alpha1.RepositorySpec) (*problem, error) {
	res, err := sessionrepo.Resolve(ctx, r.Client, p.bc, name, spec)
	var conflict *sessionrepo.ConflictError
	switch {
	case errors.As(err, &conflict):
		return missing(corev1alpha1.ReasonRepositoryConflict, "%s", conflict.Error()), nil
	case err != nil:
		return nil, err
	case res.Repository == nil:
		return nil, r.createRepository(ctx, p, res.Name, spec)
	case !sessionrepo.Created(p.bc, res.Repository):
		return nil, nil
	}
	return nil, r.adopt(ctx, p, res.Repository, spec)
}

// adopt brings the appRef of a Repository this configuration created to
// spec, and drops the controller reference an older operator set: a
// Repository must outlive its configuration, or deleting the configuration
// would garbage-collect the Repository and with it every Snapshot.
func (r *Reconciler) adopt(ctx context.Context, p *pass, repo *storagev1alpha1.Repository, spec storagev1alpha1.RepositorySpec) error {
	owned := metav1.IsControlledBy(repo, p.bc)
	if !owned && equality.Semantic.DeepEqual(repo.Spec.AppRef, spec.AppRef) &&
		repo.Labels[corev1alpha1.LabelBackupConfiguration] == p.bc.Name {
		return nil
	}
	if owned {
		if err := controllerutil.RemoveControllerReference(p.bc, repo, r.Client.Scheme()); err != nil {
			return fmt.Errorf("disown Repository %s: %w", repo.Name, err)
		}
	}
	if repo.Labels == nil {
		repo.Labels = map[string]string{}
	}
	repo.Labels[corev1alpha1.LabelBackupConfiguration] = p.bc.Name
	repo.Spec.AppRef = spec.AppRef
	if err := r.Client.Update(ctx, repo); err != nil {
		return fmt.Errorf("update Repository %s: %w", repo.Name, err)
	}
	return nil
}

// createRepository creates Repository name, labelled with the
// configuration but not owned by it.
func (r *Reconciler) createRepository(ctx context.Context, p *pass, name string, spec storagev1alpha1.RepositorySpec) error {
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: p.bc.Namespace,
			Name:      name,
			Labels:    map[string]string{corev1alpha1.LabelBackupConfiguration: p.bc.Name},
		},
		Spec: spec,
	}
	if err := r.Client.Create(ctx, repo); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Repository %s: %w", name, err)
	}
	r.Events.Eventf(p.bc, repo, "Normal", "RepositoryCreated", "Reconcile", "created Repository %s", name)
	return nil
}

// sameRepository reports whether two specs locate the same restic
// repository with the same key.
func sameRepository(a, b storagev1alpha1.RepositorySpec) bool {
	return storagev1alpha1.SameLocation(a, b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
