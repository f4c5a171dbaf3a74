package backupstorage

import (
	"context"
	"errors"
	"fmt"
	"path"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

// notOwned says why bs may not delete everything under its prefix, or ""
// when it may: its metadata.yaml must name it (a prefix without one, or
// with another owner's, is not its own), and no other BackupStorage's
// metadata.yaml may lie below it.
func notOwned(ctx context.Context, bs *storagev1alpha1.BackupStorage, store storage.Store) (string, error) {
	m, err := storage.ReadStorageMetadata(ctx, store)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "the prefix has no metadata.yaml, so this BackupStorage never owned it", nil
	case err != nil:
		return "", err
	case m.UID != string(bs.UID):
		return fmt.Sprintf("the prefix belongs to BackupStorage %s/%s (uid %s)", m.Namespace, m.Name, m.UID), nil
	}
	inside, err := storage.StoragesInside(ctx, store)
	if err != nil {
		return "", err
	}
	if len(inside) > 0 {
		return fmt.Sprintf("%s holds the metadata.yaml of another BackupStorage",
			path.Join(location(bs.Spec.Storage.S3), inside[0])), nil
	}
	return "", nil
}
