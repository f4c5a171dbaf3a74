package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
	"github.com/keepsake-dev/keepsake/operator/internal/steps"
)

// Reasons of the Ready condition that the apis package has no constants for
// yet.
const (
	// ReasonEncryptionKeyMissing: the encryption Secret exists but has no
	// RESTIC_PASSWORD key, or an empty one.
	ReasonEncryptionKeyMissing = "EncryptionKeyMissing"
	// ReasonMetadataWriteFailed: repository.yaml could not be written.
	ReasonMetadataWriteFailed = "MetadataWriteFailed"
)

// RecheckInterval is how often a Ready Repository is checked again, so that
// an encryption Secret deleted later shows up.
const RecheckInterval = 10 * time.Minute

// Reconciler checks Repositories and sums up their Snapshots.
type Reconciler struct {
	// Client reads Repositories, Snapshots and BackupStorages from the
	// cache and writes to the API server.
	Client client.Client
	// APIReader reads Secrets, ConfigMaps and Namespaces without caching
	// them.
	APIReader client.Reader
	// Events records what users should see in `kubectl describe`.
	Events events.EventRecorder
	// Options build the sync Jobs; without an Image no sync runs.
	Options jobs.Options
}

// pass is one reconciliation of one Repository, filled in step by step.
type pass struct {
	repo *storagev1alpha1.Repository
	bs   *storagev1alpha1.BackupStorage
	// events are the Events of condition changes, recorded once the status
	// is stored: a stale pass, whose patch conflicts, records nothing (no
	// RepositoryReady twice).
	events *status.PendingEvents
	// jobRepos are the resolved repositories of the Job being built.
	jobRepos *jobs.Repositories
	// nextCheck is when the next integrity check is due; zero: none.
	nextCheck time.Time
	// snaps are the Repository's Snapshots, newest first.
	snaps []storagev1alpha1.Snapshot
}

// Reconcile checks the Repository and records the outcome in its status;
// it keeps the wipe-out finalizer as the deletionPolicy says, and deletes
// the data of a Repository being deleted that holds it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var repo storagev1alpha1.Repository
	if err := r.Client.Get(ctx, req.NamespacedName, &repo); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !repo.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &repo)
	}
	if err := r.keepFinalizer(ctx, &repo); err != nil {
		return ctrl.Result{}, err
	}
	patcher := status.NewLockingPatcher(&repo)
	p := &pass{repo: &repo, events: status.NewPendingEvents(r.Events)}
	result, err := r.run(ctx, p)
	if _, perr := patcher.Patch(ctx, r.Client, &repo); perr != nil {
		if err == nil && apierrors.IsConflict(perr) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, errors.Join(err, perr)
	}
	p.events.Flush()
	return result, err
}

// run goes through the steps. The Snapshots are summed up first, so that
// the counts are right whether the Repository is Ready or not.
func (r *Reconciler) run(ctx context.Context, p *pass) (ctrl.Result, error) {
	return steps.Run(ctx, p,
		r.summarize,
		r.resolveStorage,
		r.checkLocation,
		r.checkEncryptionSecret,
		r.writeMetadata,
		r.syncSnapshots,
		r.checkIntegrity,
		r.verifySnapshots,
		r.setReady,
	)
}

// resolveStorage finds the BackupStorage, makes sure this namespace may use
// it, and waits for it to be Ready.
func (r *Reconciler) resolveStorage(ctx context.Context, p *pass) (*ctrl.Result, error) {
	ref := storageRef(p.repo)
	var bs storagev1alpha1.BackupStorage
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &bs); err != nil {
		if apierrors.IsNotFound(err) {
			return r.notReady(p, storagev1alpha1.ReasonStorageNotFound,
				fmt.Sprintf("BackupStorage %s/%s not found", ref.Namespace, ref.Name)), nil
		}
		return nil, fmt.Errorf("get BackupStorage %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	ok, err := r.allows(ctx, &bs, p.repo.Namespace)
	if err != nil {
		return nil, err
	}
	if !ok {
		return r.notReady(p, storagev1alpha1.ReasonStorageNotAllowed, fmt.Sprintf(
			"the usagePolicy of BackupStorage %s/%s does not allow namespace %s", bs.Namespace, bs.Name, p.repo.Namespace)), nil
	}
	if !status.IsTrue(bs.Status.Conditions, storagev1alpha1.ConditionReady) {
		msg := fmt.Sprintf("BackupStorage %s/%s is not Ready", bs.Namespace, bs.Name)
		if c := meta.FindStatusCondition(bs.Status.Conditions, storagev1alpha1.ConditionReady); c != nil {
			msg += fmt.Sprintf(": %s: %s", c.Reason, c.Message)
		}
		return r.notReady(p, storagev1alpha1.ReasonStorageNotReady, msg), nil
	}
	p.bs = &bs
	return nil, nil
}

// allows reports whether the storage's usagePolicy lets namespace ns use it.
func (r *Reconciler) allows(ctx context.Context, bs *storagev1alpha1.BackupStorage, ns string) (bool, error) {
	policy := bs.Spec.UsagePolicy
	var nsLabels map[string]string
	if bs.Namespace != ns && policy != nil && policy.AllowedNamespaces.From == storagev1alpha1.NamespacesFromSelector {
		var n corev1.Namespace
		if err := r.APIReader.Get(ctx, types.NamespacedName{Name: ns}, &n); err != nil {
			return false, fmt.Errorf("get namespace %s: %w", ns, err)
		}
		nsLabels = n.Labels
	}
	ok, err := policy.AllowsNamespace(bs.Namespace, ns, nsLabels)
	if err != nil {
		return false, nil // a broken selector allows nothing; the message says so
	}
	return ok, nil
}

// checkEncryptionSecret makes sure the encryption Secret exists and holds
// the password. It is read in the namespace its reference names, else the
// Repository's; one of another namespace must allow the Repository's in
// its keepsake.dev/allow-from annotation, as the Jobs require to copy it.
func (r *Reconciler) checkEncryptionSecret(ctx context.Context, p *pass) (*ctrl.Result, error) {
	key := encryptionSecretKey(p.repo)
	var secret corev1.Secret
	if err := r.APIReader.Get(ctx, key, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return r.notReady(p, storagev1alpha1.ReasonEncryptionSecretMissing,
				fmt.Sprintf("encryption secret %s not found", key)), nil
		}
		return nil, fmt.Errorf("get encryption secret %s: %w", key, err)
	}
	if key.Namespace != p.repo.Namespace && !jobs.AllowsFrom(secret.Annotations[corev1alpha1.AnnotationAllowFrom], p.repo.Namespace) {
		return r.notReady(p, corev1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
			"encryption secret %s does not allow namespace %s: annotate it %s=%s to share it",
			key, p.repo.Namespace, corev1alpha1.AnnotationAllowFrom, p.repo.Namespace)), nil
	}
	if len(secret.Data[jobs.PasswordKey]) == 0 {
		return r.notReady(p, ReasonEncryptionKeyMissing,
			fmt.Sprintf("encryption secret %s has no %s key, or an empty one", key, jobs.PasswordKey)), nil
	}
	return nil, nil
}

// setReady records a Repository that passed every check.
func (r *Reconciler) setReady(_ context.Context, p *pass) (*ctrl.Result, error) {
	repo := p.repo
	repo.Status.Phase = storagev1alpha1.RepositoryReady
	msg := fmt.Sprintf("BackupStorage %s/%s is Ready and encryption secret %s holds %s",
		p.bs.Namespace, p.bs.Name, encryptionSecretKey(repo), jobs.PasswordKey)
	if status.Set(&repo.Status.Conditions, repo.Generation, storagev1alpha1.ConditionReady, true,
		storagev1alpha1.ReasonRepositoryReady, msg) {
		p.events.Eventf(repo, nil, corev1.EventTypeNormal, storagev1alpha1.ReasonRepositoryReady, "Check", msg)
	}
	after := RecheckInterval
	if !p.nextCheck.IsZero() {
		after = min(after, max(time.Until(p.nextCheck), time.Second))
	}
	return &ctrl.Result{RequeueAfter: after}, nil
}

// notReady marks the Repository NotReady for a reason the user can fix, and
// schedules another check with backoff: user mistakes never become errors
// that crash-loop the reconciler.
func (r *Reconciler) notReady(p *pass, reason, message string) *ctrl.Result {
	repo := p.repo
	repo.Status.Phase = storagev1alpha1.RepositoryNotReady
	if status.Set(&repo.Status.Conditions, repo.Generation, storagev1alpha1.ConditionReady, false, reason, message) {
		p.events.Eventf(repo, nil, corev1.EventTypeWarning, reason, "Check", message)
	}
	return &ctrl.Result{RequeueAfter: status.Backoff(repo.Status.Conditions, storagev1alpha1.ConditionReady, time.Now())}
}
