package backupconfiguration

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
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

// desiredRepositories returns the spec of each Repository by name; two
// sessions naming one Repository must describe it alike.
func desiredRepositories(bc *corev1alpha1.BackupConfiguration) (map[string]storagev1alpha1.RepositorySpec, *problem) {
	backends := map[string]corev1alpha1.BackendReference{}
	for _, b := range bc.Spec.Backends {
		backends[b.Name] = b
	}
	target := bc.Spec.Target
	target.Namespace = namespaceOr(target.Namespace, bc.Namespace)
	want := map[string]storagev1alpha1.RepositorySpec{}
	for _, s := range bc.Spec.Sessions {
		for _, ri := range s.Repositories {
			spec := storagev1alpha1.RepositorySpec{
				StorageRef:       backends[ri.Backend].StorageRef,
				Path:             ri.Directory,
				EncryptionSecret: ri.EncryptionSecret,
				AppRef:           &target,
			}
			if old, seen := want[ri.Name]; seen && !sameRepository(old, spec) {
				return nil, invalid(corev1alpha1.ReasonRepositoryConflict,
					"session %s: repository %s is described differently by another session", s.Name, ri.Name)
			}
			want[ri.Name] = spec
		}
	}
	return want, nil
}

// ensureRepository creates the named Repository, or finds one this
// configuration created at the same location. A Repository's location
// cannot change (its Snapshots live there): when the configuration moves
// it, a new Repository named storagev1alpha1.MovedRepositoryName takes the
// new location and the old one stays with its Snapshots.
//
// It returns the Repository as it is now.
func (r *Reconciler) ensureRepository(ctx context.Context, p *pass, name string, spec storagev1alpha1.RepositorySpec) (*storagev1alpha1.Repository, *problem, error) {
	repo, err := r.getRepository(ctx, p, name)
	switch {
	case err != nil:
		return nil, nil, err
	case repo == nil:
		repo, err = r.createRepository(ctx, p, name, spec)
		return repo, nil, err
	case !r.created(p, repo):
		if sameRepository(repo.Spec, spec) {
			return repo, nil, nil
		}
		return nil, missing(corev1alpha1.ReasonRepositoryConflict,
			"Repository %s/%s exists, is not managed by this configuration and points elsewhere", repo.Namespace, name), nil
	case !sameRepository(repo.Spec, spec):
		return r.ensureRepository(ctx, p, storagev1alpha1.MovedRepositoryName(name, spec), spec)
	}
	return repo, nil, r.adopt(ctx, p, repo, spec)
}

// getRepository returns Repository name of the configuration's namespace,
// nil when there is none.
func (r *Reconciler) getRepository(ctx context.Context, p *pass, name string) (*storagev1alpha1.Repository, error) {
	var repo storagev1alpha1.Repository
	key := types.NamespacedName{Namespace: p.bc.Namespace, Name: name}
	if err := r.Client.Get(ctx, key, &repo); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Repository %s: %w", key, err)
	}
	return &repo, nil
}

// created reports whether this configuration created repo: it carries the
// configuration's label, or, made by an older operator, its controller
// reference.
func (r *Reconciler) created(p *pass, repo *storagev1alpha1.Repository) bool {
	return repo.Labels[corev1alpha1.LabelBackupConfiguration] == p.bc.Name || metav1.IsControlledBy(repo, p.bc)
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
