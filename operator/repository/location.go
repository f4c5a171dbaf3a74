package repository

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// overlap is another Repository whose location is the same as, or nested
// with, the one of the Repository at hand.
type overlap struct {
	repo *storagev1alpha1.Repository
	// same says the locations are equal; otherwise one is inside the other.
	same bool
	// where is the other Repository's location.
	where string
}

// checkLocation makes sure no older Repository, in any namespace and
// through any BackupStorage on the same bucket and prefix, uses this
// Repository's location or one nested with it: two Repositories on one
// restic repository would each count, forget and wipe out the other's
// Snapshots. The oldest Repository of a location keeps it.
func (r *Reconciler) checkLocation(ctx context.Context, p *pass) (*ctrl.Result, error) {
	overlaps, err := r.overlapping(ctx, p.repo, p.bs)
	if err != nil {
		return nil, err
	}
	for _, o := range overlaps {
		if !older(o.repo, p.repo) {
			continue
		}
		where := storagev1alpha1.RepositoryLocation(p.bs, p.repo.Namespace, p.repo.Spec.Path)
		if o.same {
			return r.notReady(p, storagev1alpha1.ReasonLocationInUse, fmt.Sprintf(
				"Repository %s/%s already uses %s; one location has one Repository: use that one, or another path",
				o.repo.Namespace, o.repo.Name, where)), nil
		}
		return r.notReady(p, storagev1alpha1.ReasonLocationOverlaps, fmt.Sprintf(
			"Repository %s/%s at %s and this one at %s are nested: repositories may not contain one another; choose another path",
			o.repo.Namespace, o.repo.Name, o.where, where)), nil
	}
	return nil, nil
}

// overlapping lists the other Repositories whose location overlaps the
// one of repo in bs. A Repository whose BackupStorage cannot be read is
// skipped: its location is unknown.
func (r *Reconciler) overlapping(ctx context.Context, repo *storagev1alpha1.Repository, bs *storagev1alpha1.BackupStorage) ([]overlap, error) {
	var list storagev1alpha1.RepositoryList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list Repositories: %w", err)
	}
	mine := storagev1alpha1.RepositoryLocation(bs, repo.Namespace, repo.Spec.Path)
	storages := map[client.ObjectKey]*storagev1alpha1.BackupStorage{}
	var found []overlap
	for i := range list.Items {
		other := &list.Items[i]
		if other.UID == repo.UID {
			continue
		}
		obs, err := r.storageOf(ctx, other, storages)
		if err != nil {
			return nil, err
		}
		if obs == nil {
			continue
		}
		where := storagev1alpha1.RepositoryLocation(obs, other.Namespace, other.Spec.Path)
		if same, nested := storagev1alpha1.LocationsOverlap(mine, where); same || nested {
			found = append(found, overlap{repo: other, same: same, where: where})
		}
	}
	return found, nil
}

// storageOf returns the BackupStorage of repo, read once per pass into
// seen; nil when it does not exist.
func (r *Reconciler) storageOf(ctx context.Context, repo *storagev1alpha1.Repository,
	seen map[client.ObjectKey]*storagev1alpha1.BackupStorage) (*storagev1alpha1.BackupStorage, error) {
	ref := storageRef(repo)
	key := client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}
	if bs, ok := seen[key]; ok {
		return bs, nil
	}
	bs := &storagev1alpha1.BackupStorage{}
	if err := r.Client.Get(ctx, key, bs); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("get BackupStorage %s: %w", key, err)
		}
		bs = nil
	}
	seen[key] = bs
	return bs, nil
}

// older reports whether a was created before b; creation times are in
// seconds, so a tie goes to the smaller namespace/name.
func older(a, b *storagev1alpha1.Repository) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}
