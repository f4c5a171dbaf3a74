package backupconfiguration

import (
	"context"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/sessionrepo"
)

// ensureRepositories creates or updates the Repository of every session
// repository, and waits for each to be Ready: a configuration whose
// Repository cannot be used (its encryption Secret lacks the password, its
// storage is gone) is not Ready either. A Repository of the same name that
// this configuration does not own is used as is when it points at the same
// place, and is a conflict otherwise.
func (r *Reconciler) ensureRepositories(ctx context.Context, p *pass) (*ctrl.Result, error) {
	want, prob := desiredRepositories(p.bc)
	if prob != nil {
		return r.failRepositories(p, prob), nil
	}
	repos := make([]*storagev1alpha1.Repository, 0, len(want))
	for _, name := range sortedKeys(want) {
		repo, prob, err := r.ensureRepository(ctx, p, name, want[name])
		if err != nil {
			return nil, err
		}
		if prob != nil {
			return r.failRepositories(p, prob), nil
		}
		repos = append(repos, repo)
	}
	for _, repo := range repos {
		if prob := readiness(repo); prob != nil {
			return r.failRepositories(p, prob), nil
		}
	}
	r.setCondition(p, corev1alpha1.ConditionRepositoryReady, nil, corev1alpha1.ReasonRepositoriesReady,
		fmt.Sprintf("%d repositories in place and Ready", len(want)))
	return nil, nil
}

// failRepositories records a problem in RepositoriesReady and Ready.
func (r *Reconciler) failRepositories(p *pass, prob *problem) *ctrl.Result {
	r.setCondition(p, corev1alpha1.ConditionRepositoryReady, prob, "", "")
	return r.fail(p, prob)
}

// readiness is the problem of a Repository that is not Ready, nil when it
// is. One the Repository reconciler has not checked yet (at its current
// generation) is pending: the configuration waits for it without a
// warning, since the watch on Repositories brings it back in seconds.
func readiness(repo *storagev1alpha1.Repository) *problem {
	c := meta.FindStatusCondition(repo.Status.Conditions, storagev1alpha1.ConditionReady)
	switch {
	case c == nil || c.ObservedGeneration < repo.Generation:
		prob := missing(corev1alpha1.ReasonRepositoryPending,
			"Repository %s/%s is not checked yet: waiting for it", repo.Namespace, repo.Name)
		prob.waiting = true
		return prob
	case c.Status == metav1.ConditionTrue:
		return nil
	}
	return missing(corev1alpha1.ReasonRepositoryNotReady,
		"Repository %s/%s is not Ready: %s: %s", repo.Namespace, repo.Name, c.Reason, c.Message)
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
//
// It returns the Repository as it is now.
func (r *Reconciler) ensureRepository(ctx context.Context, p *pass, name string, spec storagev1alpha1.RepositorySpec) (*storagev1alpha1.Repository, *problem, error) {
	res, err := sessionrepo.Resolve(ctx, r.Client, p.bc, name, spec)
	var conflict *sessionrepo.ConflictError
	switch {
	case errors.As(err, &conflict):
		return nil, missing(corev1alpha1.ReasonRepositoryConflict, "%s", conflict.Error()), nil
	case err != nil:
		return nil, nil, err
	case res.Repository == nil:
		repo, err := r.createRepository(ctx, p, res.Name, spec)
		return repo, nil, err
	case !sessionrepo.Created(p.bc, res.Repository):
		return res.Repository, nil, nil
	}
	return res.Repository, nil, r.adopt(ctx, p, res.Repository, spec)
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
func (r *Reconciler) createRepository(ctx context.Context, p *pass, name string, spec storagev1alpha1.RepositorySpec) (*storagev1alpha1.Repository, error) {
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: p.bc.Namespace,
			Name:      name,
			Labels:    map[string]string{corev1alpha1.LabelBackupConfiguration: p.bc.Name},
		},
		Spec: spec,
	}
	err := r.Client.Create(ctx, repo)
	if apierrors.IsAlreadyExists(err) {
		// Created by an earlier pass the cache has not seen yet.
		return repo, nil
	}
	if err != nil {
		return nil, fmt.Errorf("create Repository %s: %w", name, err)
	}
	r.Events.Eventf(p.bc, repo, corev1.EventTypeNormal, corev1alpha1.ReasonRepositoryCreated, "Reconcile", "created Repository %s", name)
	return repo, nil
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
