// Package sessionrepo says which Repository object holds a session
// repository of a BackupConfiguration. The configuration reconciler creates
// Repositories by it and the BackupSession reconciler writes to them by it,
// so the two cannot disagree: a Repository's location is immutable, and
// when a configuration moves a session repository (storage, directory or
// encryption Secret) a new Repository named
// storagev1alpha1.MovedRepositoryName takes the new location while the old
// one keeps its Snapshots.
package sessionrepo

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// maxMoves bounds the chain of moved names Resolve follows; past it, only
// hash collisions or hand-made Repositories remain, which are a conflict.
const maxMoves = 4

// Spec is the Repository spec that repository ri of a session of bc
// describes: its backend's storage, its directory and encryption Secret,
// and the configuration's target.
func Spec(bc *corev1alpha1.BackupConfiguration, ri corev1alpha1.RepositoryInfo) storagev1alpha1.RepositorySpec {
	var storageRef storagev1alpha1.ObjectReference
	for _, b := range bc.Spec.Backends {
		if b.Name == ri.Backend {
			storageRef = b.StorageRef
		}
	}
	target := bc.Spec.Target
	if target.Namespace == "" {
		target.Namespace = bc.Namespace
	}
	return storagev1alpha1.RepositorySpec{
		StorageRef:       storageRef,
		Path:             ri.Directory,
		EncryptionSecret: ri.EncryptionSecret,
		AppRef:           &target,
	}
}

// Resolved is the Repository that holds a session repository's location.
type Resolved struct {
	// Name of the Repository: the session repository's name, or the name
	// of the Repository that took over when the configuration moved it.
	Name string
	// Repository is that Repository as read; nil when it does not exist
	// yet (the configuration reconciler creates it).
	Repository *storagev1alpha1.Repository
}

// ConflictError is a Repository of the session repository's name that bc
// did not create and that points elsewhere.
type ConflictError struct {
	// Namespace and Name of the Repository in the way.
	Namespace, Name string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("Repository %s/%s exists, is not managed by this configuration and points elsewhere: "+
		"name the session repository differently or delete that Repository", e.Namespace, e.Name)
}

// Resolve returns the Repository of bc's namespace that holds location
// spec for the session repository called name: Repository name when it is
// absent or already there, else, when bc created it for another location,
// the Repository MovedRepositoryName(name, spec) resolves to in turn. A
// Repository of that name that bc did not create and that points
// elsewhere is a *ConflictError.
func Resolve(ctx context.Context, c client.Reader, bc *corev1alpha1.BackupConfiguration, name string, spec storagev1alpha1.RepositorySpec) (Resolved, error) {
	for range maxMoves {
		repo, err := get(ctx, c, bc.Namespace, name)
		switch {
		case err != nil:
			return Resolved{}, err
		case repo == nil, storagev1alpha1.SameLocation(repo.Spec, spec):
			return Resolved{Name: name, Repository: repo}, nil
		case !Created(bc, repo):
			return Resolved{}, &ConflictError{Namespace: bc.Namespace, Name: name}
		}
		name = storagev1alpha1.MovedRepositoryName(name, spec)
	}
	return Resolved{}, &ConflictError{Namespace: bc.Namespace, Name: name}
}

// Created reports whether bc created repo: it carries the configuration's
// label, or, made by an older operator, its controller reference.
func Created(bc *corev1alpha1.BackupConfiguration, repo *storagev1alpha1.Repository) bool {
	return repo.Labels[corev1alpha1.LabelBackupConfiguration] == bc.Name || metav1.IsControlledBy(repo, bc)
}

// get returns Repository name of ns, nil when there is none.
func get(ctx context.Context, c client.Reader, ns, name string) (*storagev1alpha1.Repository, error) {
	var repo storagev1alpha1.Repository
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &repo); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Repository %s/%s: %w", ns, name, err)
	}
	return &repo, nil
}
