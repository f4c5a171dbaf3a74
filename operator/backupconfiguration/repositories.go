package backupconfiguration

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
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

// ensureRepository creates the named Repository, or brings one this
// configuration controls to spec.
func (r *Reconciler) ensureRepository(ctx context.Context, p *pass, name string, spec storagev1alpha1.RepositorySpec) (*problem, error) {
	var repo storagev1alpha1.Repository
	key := types.NamespacedName{Namespace: p.bc.Namespace, Name: name}
	err := r.Client.Get(ctx, key, &repo)
	switch {
	case apierrors.IsNotFound(err):
		return nil, r.createRepository(ctx, p, name, spec)
	case err != nil:
		return nil, fmt.Errorf("get Repository %s: %w", key, err)
	case !metav1.IsControlledBy(&repo, p.bc):
		if sameRepository(repo.Spec, spec) {
			return nil, nil
		}
		return missing(corev1alpha1.ReasonRepositoryConflict,
			"Repository %s exists, is not managed by this configuration and points elsewhere", key), nil
	}
	if sameRepository(repo.Spec, spec) && equality.Semantic.DeepEqual(repo.Spec.AppRef, spec.AppRef) {
		return nil, nil
	}
	repo.Spec.StorageRef, repo.Spec.Path = spec.StorageRef, spec.Path
	repo.Spec.EncryptionSecret, repo.Spec.AppRef = spec.EncryptionSecret, spec.AppRef
	if err := r.Client.Update(ctx, &repo); err != nil {
		return nil, fmt.Errorf("update Repository %s: %w", key, err)
	}
	return nil, nil
}

func (r *Reconciler) createRepository(ctx context.Context, p *pass, name string, spec storagev1alpha1.RepositorySpec) error {
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: p.bc.Namespace,
			Name:      name,
			Labels:    map[string]string{corev1alpha1.LabelBackupConfiguration: p.bc.Name},
		},
		Spec: spec,
	}
	if err := controllerutil.SetControllerReference(p.bc, repo, r.Client.Scheme()); err != nil {
		return fmt.Errorf("own Repository %s: %w", name, err)
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
	return a.StorageRef == b.StorageRef && a.Path == b.Path && a.EncryptionSecret == b.EncryptionSecret
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
