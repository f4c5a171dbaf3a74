package backupstorage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
	"github.com/keepsake-dev/keepsake/operator/internal/steps"
	"github.com/keepsake-dev/keepsake/operator/internal/storageref"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

const (
	// checkTimeout bounds one check of the storage, so that an endpoint that
	// never answers cannot hold a worker.
	checkTimeout = 30 * time.Second
	// RecheckInterval is how often a Ready storage is checked again, so that
	// a bucket deleted or credentials revoked later show up.
	RecheckInterval = 10 * time.Minute
)

// Reconciler checks BackupStorages.
type Reconciler struct {
	// Client reads BackupStorages from the cache and patches their status.
	Client client.Client
	// APIReader reads Secrets and ConfigMaps without caching them.
	APIReader client.Reader
	// Events records what users should see in `kubectl describe`.
	Events events.EventRecorder

	cluster clusterIdentity
}

// check is one pass over one BackupStorage, filled in step by step.
type check struct {
	bs    *storagev1alpha1.BackupStorage
	cfg   storage.Config
	store storage.Store
}

// Reconcile checks the storage and records the outcome in its status; it
// keeps the wipe-out finalizer as the deletionPolicy says, and deletes the
// data of a storage being deleted that holds it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var bs storagev1alpha1.BackupStorage
	if err := r.Client.Get(ctx, req.NamespacedName, &bs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !bs.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &bs)
	}
	if err := r.keepFinalizer(ctx, &bs); err != nil {
		return ctrl.Result{}, err
	}
	patcher := status.NewPatcher(&bs)
	result, err := r.run(ctx, &check{bs: &bs})
	if _, perr := patcher.Patch(ctx, r.Client, &bs); perr != nil {
		return ctrl.Result{}, errors.Join(err, perr)
	}
	return result, err
}

// run goes through the steps, in the order of DESIGN.md's flow.
func (r *Reconciler) run(ctx context.Context, c *check) (ctrl.Result, error) {
	return steps.Run(ctx, c,
		r.readCredentials,
		r.readCABundle,
		r.openStore,
		r.checkBucket,
		r.writeMetadata,
		r.setReady,
	)
}

// readCredentials resolves the credentials Secret of an S3 storage.
func (r *Reconciler) readCredentials(ctx context.Context, c *check) (*ctrl.Result, error) {
	s3 := c.bs.Spec.Storage.S3
	if c.bs.Spec.Storage.Provider != storagev1alpha1.ProviderS3 || s3 == nil || s3.SecretName == "" {
		return nil, nil
	}
	var secret corev1.Secret
	key := types.NamespacedName{Namespace: c.bs.Namespace, Name: s3.SecretName}
	if err := r.APIReader.Get(ctx, key, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return r.notReady(c, storagev1alpha1.ReasonSecretMissing,
				fmt.Sprintf("secret %s not found", key)), nil
		}
		return nil, fmt.Errorf("get credentials secret %s: %w", key, err)
	}
	creds, err := storage.CredentialsFromSecretData(secret.Data)
	if err != nil {
		return r.notReady(c, storagev1alpha1.ReasonSecretMissing,
			fmt.Sprintf("secret %s: %v", key, err)), nil
	}
	c.cfg.Credentials = creds
	return nil, nil
}

// readCABundle resolves the CA bundle of an S3 storage from its Secret or
// ConfigMap.
func (r *Reconciler) readCABundle(ctx context.Context, c *check) (*ctrl.Result, error) {
	s3 := c.bs.Spec.Storage.S3
	if s3 == nil || s3.CABundle == nil {
		return nil, nil
	}
	pem, where, err := storageref.CABundle(ctx, r.APIReader, c.bs.Namespace, s3.CABundle)
	switch {
	case apierrors.IsNotFound(err):
		return r.notReady(c, storagev1alpha1.ReasonCABundleMissing, where+" not found"), nil
	case err != nil:
		return nil, fmt.Errorf("get CA bundle %s: %w", where, err)
	case len(pem) == 0:
		return r.notReady(c, storagev1alpha1.ReasonCABundleMissing, where+" is empty or absent"), nil
	}
	c.cfg.S3.CABundle = pem
	return nil, nil
}

// openStore builds the storage configuration. A local storage is only
// mounted into Jobs, so the operator cannot reach it: it is Ready as soon
// as it is well-formed.
func (r *Reconciler) openStore(_ context.Context, c *check) (*ctrl.Result, error) {
	sb := c.bs.Spec.Storage
	if sb.Provider == storagev1alpha1.ProviderLocal {
		return r.ready(c, "local storage is checked by the Jobs that mount it"), nil
	}
	if sb.S3 == nil { // the schema forbids it; never panic on a user's object
		return r.notReady(c, storagev1alpha1.ReasonBucketNotFound, "provider s3 without an s3 section"), nil
	}
	c.cfg = s3Config(sb.S3, c.cfg.Credentials, c.cfg.S3.CABundle)
	store, err := storage.Open(c.cfg)
	if err != nil {
		return r.notReady(c, reasonOf(err), err.Error()), nil
	}
	c.store = store
	return nil, nil
}

// s3Config is the storage configuration of s3 with its credentials and CA
// bundle read.
func s3Config(s3 *storagev1alpha1.S3Storage, creds storage.Credentials, caBundle []byte) storage.Config {
	return storage.Config{
		Provider: storage.ProviderS3,
		S3: storage.S3Config{
			Endpoint:       s3.Endpoint,
			Bucket:         s3.Bucket,
			Prefix:         s3.Prefix,
			Region:         s3.Region,
			ForcePathStyle: s3.ForcePathStyle,
			InsecureTLS:    s3.InsecureTLS,
			CABundle:       caBundle,
			MaxConnections: int(s3.MaxConnections),
		},
		Credentials: creds,
	}
}

// checkBucket makes sure the bucket exists and a probe object can be
// written, read and deleted.
func (r *Reconciler) checkBucket(ctx context.Context, c *check) (*ctrl.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if err := c.store.Check(ctx); err != nil {
		return r.notReady(c, reasonOf(err), err.Error()), nil
	}
	return nil, nil
}

// writeMetadata writes <prefix>/metadata.yaml naming this BackupStorage,
// unless it already does. A metadata.yaml naming another BackupStorage
// (another object, or another cluster's) is never overwritten: the storage
// is NotReady with PrefixInUse, or, attached with attach: Shared, Ready
// without owning the prefix.
func (r *Reconciler) writeMetadata(ctx context.Context, c *check) (*ctrl.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	old, err := storage.ReadStorageMetadata(ctx, c.store)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return r.notReady(c, reasonOf(err), err.Error()), nil
	}
	cluster, err := r.clusterID(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case old != nil && old.UID == string(c.bs.UID):
		return nil, nil
	case c.bs.Spec.Attach == storagev1alpha1.AttachShared:
		return r.attached(c, old), nil
	case old != nil && !sameStorage(old, c.bs, cluster):
		return r.notReady(c, storagev1alpha1.ReasonPrefixInUse, fmt.Sprintf(
			"%s/metadata.yaml names BackupStorage %s/%s (uid %s, written %s), not this one: set spec.attach: Shared to use its backups without ever deleting them, or choose another prefix",
			location(c.bs.Spec.Storage.S3), old.Namespace, old.Name, old.UID, old.CreatedAt.Format(time.RFC3339))), nil
	}
	m := storage.StorageMetadata{
		Kind:      "BackupStorage",
		Name:      c.bs.Name,
		Namespace: c.bs.Namespace,
		UID:       string(c.bs.UID),
		Cluster:   cluster,
		CreatedAt: time.Now().UTC(),
	}
	if old != nil {
		m.CreatedAt = old.CreatedAt
	}
	if err := storage.WriteStorageMetadata(ctx, c.store, m); err != nil {
		return r.notReady(c, storagev1alpha1.ReasonMetadataWriteError, err.Error()), nil
	}
	return nil, nil
}

// attached marks Ready a storage attached with attach: Shared, which never
// writes metadata.yaml; old is the one found, nil when there is none.
func (r *Reconciler) attached(c *check, old *storage.StorageMetadata) *ctrl.Result {
	owner := "no BackupStorage (there is no metadata.yaml)"
	if old != nil {
		owner = fmt.Sprintf("BackupStorage %s/%s (uid %s)", old.Namespace, old.Name, old.UID)
	}
	bs := c.bs
	msg := fmt.Sprintf("attached to %s owned by %s: backups there can be used, nothing is deleted through this storage",
		location(bs.Spec.Storage.S3), owner)
	bs.Status.Phase = storagev1alpha1.BackupStorageReady
	if status.Set(&bs.Status.Conditions, bs.Generation, storagev1alpha1.ConditionReady, true,
		storagev1alpha1.ReasonPrefixAttached, msg) {
		r.Events.Eventf(bs, nil, corev1.EventTypeNormal, storagev1alpha1.ReasonPrefixAttached, "Check", msg)
	}
	return &ctrl.Result{RequeueAfter: RecheckInterval}
}

// setReady records a storage that passed every check.
func (r *Reconciler) setReady(_ context.Context, c *check) (*ctrl.Result, error) {
	where := path.Join(c.cfg.S3.Bucket, c.cfg.S3.Prefix)
	return r.ready(c, fmt.Sprintf("bucket %s is reachable and writable", where)), nil
}

// ready marks the storage Ready and schedules the next periodic check.
func (r *Reconciler) ready(c *check, message string) *ctrl.Result {
	bs := c.bs
	bs.Status.Phase = storagev1alpha1.BackupStorageReady
	if status.Set(&bs.Status.Conditions, bs.Generation, storagev1alpha1.ConditionReady, true,
		storagev1alpha1.ReasonStorageAvailable, message) {
		r.Events.Eventf(bs, nil, corev1.EventTypeNormal, storagev1alpha1.ReasonStorageAvailable, "Check", message)
	}
	return &ctrl.Result{RequeueAfter: RecheckInterval}
}

// notReady marks the storage NotReady for a reason the user can fix, and
// schedules another check with backoff: user mistakes never become errors
// that crash-loop the reconciler.
func (r *Reconciler) notReady(c *check, reason, message string) *ctrl.Result {
	bs := c.bs
	bs.Status.Phase = storagev1alpha1.BackupStorageNotReady
	if status.Set(&bs.Status.Conditions, bs.Generation, storagev1alpha1.ConditionReady, false, reason, message) {
		r.Events.Eventf(bs, nil, corev1.EventTypeWarning, reason, "Check", message)
	}
	return &ctrl.Result{RequeueAfter: status.Backoff(bs.Status.Conditions, storagev1alpha1.ConditionReady, time.Now())}
}

// reasonOf maps a storage error to the reason of the Ready condition.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, storage.ErrBucketNotFound):
		return storagev1alpha1.ReasonBucketNotFound
	case errors.Is(err, storage.ErrAccessDenied):
		return storagev1alpha1.ReasonAccessDenied
	case errors.Is(err, storage.ErrInvalidCredentials):
		return storagev1alpha1.ReasonInvalidCredentials
	default:
		return storagev1alpha1.ReasonUnreachable
	}
}
