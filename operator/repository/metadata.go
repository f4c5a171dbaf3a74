package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/storageref"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

// AnnotationMetadataHash holds a hash of the repository.yaml last written
// for a Repository and of where it was written, so that it is written again
// only when either changes.
const AnnotationMetadataHash = "storage.keepsake.dev/metadata-hash"

// writeTimeout bounds writing repository.yaml, so that an endpoint that
// never answers cannot hold a worker.
const writeTimeout = 30 * time.Second

// writeMetadata writes <prefix>/<namespace>/<path>/repository.yaml beside
// the restic repository, unless the same content was written to the same
// place before. A local storage is only mounted into Jobs: the operator
// cannot reach it, so it writes nothing there.
func (r *Reconciler) writeMetadata(ctx context.Context, p *pass) (*ctrl.Result, error) {
	s3 := p.bs.Spec.Storage.S3
	if p.bs.Spec.Storage.Provider != storagev1alpha1.ProviderS3 || s3 == nil {
		return nil, nil
	}
	m := metadata(p.repo)
	hash, err := metadataHash(m, s3)
	if err != nil {
		return nil, err
	}
	if p.repo.Annotations[AnnotationMetadataHash] == hash {
		return nil, nil
	}
	cfg, result, err := r.storageConfig(ctx, p)
	if result != nil || err != nil {
		return result, err
	}
	store, err := storage.Open(cfg)
	if err != nil {
		return r.notReady(p, ReasonMetadataWriteFailed, err.Error()), nil
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := storage.WriteRepositoryMetadata(wctx, store, p.repo.Namespace, p.repo.Spec.Path, m); err != nil {
		return r.notReady(p, ReasonMetadataWriteFailed, err.Error()), nil
	}
	return nil, r.recordHash(ctx, p.repo, hash)
}

// metadata is the content of the Repository's repository.yaml. CreatedAt
// is the Repository's creation, so that the content stays the same from
// one pass to the next.
func metadata(repo *storagev1alpha1.Repository) storage.RepositoryMetadata {
	ref := storageRef(repo)
	m := storage.RepositoryMetadata{
		Name:             repo.Name,
		Namespace:        repo.Namespace,
		Path:             repo.Spec.Path,
		StorageRef:       ref.Namespace + "/" + ref.Name,
		EncryptionSecret: repo.Spec.EncryptionSecret.Name,
		CreatedAt:        repo.CreationTimestamp.UTC(),
	}
	if app := repo.Spec.AppRef; app != nil {
		ns := app.Namespace
		if ns == "" {
			ns = repo.Namespace
		}
		m.AppRef = path.Join(app.Kind, ns, app.Name)
	}
	return m
}

// metadataHash is a hash of the content m and of where it goes.
func metadataHash(m storage.RepositoryMetadata, s3 *storagev1alpha1.S3Storage) (string, error) {
	data, err := json.Marshal(struct {
		Metadata                 storage.RepositoryMetadata
		Endpoint, Bucket, Prefix string
	}{m, s3.Endpoint, s3.Bucket, s3.Prefix})
	if err != nil {
		return "", fmt.Errorf("hash repository.yaml: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16]), nil
}

// recordHash sets the hash annotation with a patch of that one key, on a
// copy: repo stays as read, the base of its status patch.
func (r *Reconciler) recordHash(ctx context.Context, repo *storagev1alpha1.Repository, hash string) error {
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{AnnotationMetadataHash: hash},
	}})
	if err != nil {
		return fmt.Errorf("encode annotation patch: %w", err)
	}
	if err := r.Client.Patch(ctx, repo.DeepCopy(), client.RawPatch(types.MergePatchType, data)); err != nil {
		return fmt.Errorf("annotate Repository %s: %w", repo.Name, err)
	}
	return nil
}

// storageConfig resolves the S3 storage's credentials Secret and CA bundle,
// which live in the storage's namespace. The BackupStorage reconciler
// checked them already; one deleted or emptied since is reported here.
func (r *Reconciler) storageConfig(ctx context.Context, p *pass) (storage.Config, *ctrl.Result, error) {
	cfg, err := r.s3Config(ctx, p.bs)
	switch {
	case apierrors.IsNotFound(err):
		return cfg, r.notReady(p, storagev1alpha1.ReasonStorageNotReady, err.Error()), nil
	case errors.Is(err, storage.ErrMissingCredentials):
		return cfg, r.notReady(p, storagev1alpha1.ReasonStorageNotReady, err.Error()), nil
	}
	return cfg, nil, err
}

// s3Config is the configuration of S3 storage bs with its credentials and
// CA bundle read. The error wraps a NotFound API error when the Secret or
// ConfigMap is gone, and storage.ErrMissingCredentials when the Secret
// holds no key pair.
func (r *Reconciler) s3Config(ctx context.Context, bs *storagev1alpha1.BackupStorage) (storage.Config, error) {
	s3 := bs.Spec.Storage.S3
	cfg := storage.Config{Provider: storage.ProviderS3, S3: storage.S3Config{
		Endpoint:       s3.Endpoint,
		Bucket:         s3.Bucket,
		Prefix:         s3.Prefix,
		Region:         s3.Region,
		ForcePathStyle: s3.ForcePathStyle,
		InsecureTLS:    s3.InsecureTLS,
		MaxConnections: int(s3.MaxConnections),
	}}
	where := fmt.Sprintf("of BackupStorage %s/%s", bs.Namespace, bs.Name)
	if s3.SecretName != "" {
		var secret corev1.Secret
		key := types.NamespacedName{Namespace: bs.Namespace, Name: s3.SecretName}
		if err := r.APIReader.Get(ctx, key, &secret); err != nil {
			return cfg, fmt.Errorf("credentials secret %s %s: %w", key, where, err)
		}
		creds, err := storage.CredentialsFromSecretData(secret.Data)
		if err != nil {
			return cfg, fmt.Errorf("secret %s %s: %w", key, where, err)
		}
		cfg.Credentials = creds
	}
	if s3.CABundle != nil {
		pem, what, err := storageref.CABundle(ctx, r.APIReader, bs.Namespace, s3.CABundle)
		if err != nil {
			return cfg, fmt.Errorf("%s %s: %w", what, where, err)
		}
		cfg.S3.CABundle = pem
	}
	return cfg, nil
}
