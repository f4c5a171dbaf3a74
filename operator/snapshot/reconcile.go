package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
	"github.com/keepsake-dev/keepsake/operator/internal/steps"
)

// The Forgotten condition of a Snapshot being deleted and its reasons. The
// apis package has no constants for them yet, so they live here.
const (
	// ConditionForgotten is False while a Job forgets the restic snapshots
	// (ForgetRunning) or after it failed (ForgetFailed). It never turns
	// True: the Snapshot is gone by then.
	ConditionForgotten = "Forgotten"

	ReasonForgetRunning = "ForgetRunning"
	ReasonForgetFailed  = "ForgetFailed"
	// ReasonForgotten is the Event of a successful forget.
	ReasonForgotten = "Forgotten"
	// ReasonDataKept is the Event of a Snapshot released without forgetting
	// its restic snapshots.
	ReasonDataKept = "DataKept"
)

// maxRetryDelay caps the wait between two attempts to forget.
const maxRetryDelay = 10 * time.Minute

// Reconciler keeps the forget finalizer on Snapshots and, when one is
// deleted, forgets its restic snapshots with a Job before letting it go.
type Reconciler struct {
	// Client reads from the cache and writes to the API server.
	Client client.Client
	// APIReader reads past the cache: a Job created just before a restart
	// is found rather than created twice.
	APIReader client.Reader
	// Events records what users should see in `kubectl describe`.
	Events events.EventRecorder
	// Options are the image and ServiceAccount of the Jobs.
	Options Options
}

// pass is one reconciliation of one Snapshot being deleted, filled in step
// by step.
type pass struct {
	snap *storagev1alpha1.Snapshot
	repo *storagev1alpha1.Repository
	// ids are the restic snapshots to forget.
	ids []string
	job *batchv1.Job
	now time.Time
	// release says the finalizer goes once the status is written.
	release bool
	// events are the Events of status changes, recorded once the status
	// is stored: a stale pass, whose patch conflicts, records nothing.
	events *status.PendingEvents
}

// Reconcile keeps the finalizer of a live Snapshot as its deletionPolicy
// says, and forgets the data of a Snapshot being deleted.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var snap storagev1alpha1.Snapshot
	err := r.Client.Get(ctx, req.NamespacedName, &snap)
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, r.cleanUp(ctx, req.Namespace, req.Name)
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("get Snapshot %s: %w", req.Name, err)
	}
	if snap.DeletionTimestamp.IsZero() {
		return r.keepFinalizer(ctx, &snap)
	}
	if !controllerutil.ContainsFinalizer(&snap, storagev1alpha1.FinalizerForget) {
		return ctrl.Result{}, nil
	}
	patcher := status.NewLockingPatcher(&snap)
	p := &pass{snap: &snap, now: time.Now(), events: status.NewPendingEvents(r.Events)}
	result, err := r.run(ctx, p)
	if _, perr := patcher.Patch(ctx, r.Client, &snap); perr != nil {
		if err == nil && apierrors.IsConflict(perr) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, errors.Join(err, perr)
	}
	p.events.Flush()
	if err != nil || !p.release {
		return result, err
	}
	return r.release(ctx, &snap)
}

// run goes through the steps: is there anything to forget, the Job, its
// outcome.
func (r *Reconciler) run(ctx context.Context, p *pass) (ctrl.Result, error) {
	return steps.Run(ctx, p, r.checkNeeded, r.protectLast, r.ensureJob, r.trackJob)
}

// keepFinalizer adds the forget finalizer to a Snapshot whose data goes
// with it (deletionPolicy WipeOut, the default, or Delete, its former
// name) and removes it from one whose data stays (Retain).
func (r *Reconciler) keepFinalizer(ctx context.Context, snap *storagev1alpha1.Snapshot) (ctrl.Result, error) {
	want := snap.Spec.DeletionPolicy.ForgetsData()
	return onConflict(status.SetFinalizer(ctx, r.Client, snap, storagev1alpha1.FinalizerForget, want))
}

// release removes the forget finalizer, letting the Snapshot go, and then
// deletes the forget Job and its settings if there were any.
func (r *Reconciler) release(ctx context.Context, snap *storagev1alpha1.Snapshot) (ctrl.Result, error) {
	hadJob := meta.FindStatusCondition(snap.Status.Conditions, ConditionForgotten) != nil
	result, err := onConflict(status.SetFinalizer(ctx, r.Client, snap, storagev1alpha1.FinalizerForget, false))
	if err != nil || result.RequeueAfter > 0 || !hadJob {
		return result, err
	}
	return ctrl.Result{}, r.deleteJob(ctx, snap.Namespace, JobName(snap.Name))
}

// onConflict turns a conflict (someone changed the finalizers meanwhile)
// into a quick retry on a fresh read.
func onConflict(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	return ctrl.Result{}, err
}

// checkNeeded releases, without a Job, a Snapshot whose restic snapshots
// are already gone, were never written, are to be kept, or belong to a
// Repository that is itself going away.
func (r *Reconciler) checkNeeded(ctx context.Context, p *pass) (*ctrl.Result, error) {
	snap := p.snap
	if snap.Annotations[storagev1alpha1.AnnotationForgotten] == "true" {
		return r.releaseKeeping(p, "", ""), nil
	}
	if !snap.Spec.DeletionPolicy.ForgetsData() {
		return r.releaseKeeping(p, corev1.EventTypeNormal,
			"deletionPolicy is Retain: the restic snapshots stay in the repository"), nil
	}
	p.ids = resticIDs(snap)
	if len(p.ids) == 0 {
		return r.releaseKeeping(p, "", ""), nil
	}
	repo, err := r.repository(ctx, snap)
	if err != nil {
		return nil, err
	}
	if repo == nil || !repo.DeletionTimestamp.IsZero() {
		// The Repository's own deletionPolicy decides about its data: Retain
		// keeps it, WipeOut removes all of it, forgotten or not.
		return r.releaseKeeping(p, corev1.EventTypeNormal, fmt.Sprintf(
			"Repository %s is gone or being deleted: its deletionPolicy decides about the data, so restic snapshot(s) %v are not forgotten",
			snap.Spec.Repository, p.ids)), nil
	}
	p.repo = repo
	return nil, nil
}

// lastCheckInterval is how often a protected last Snapshot looks again for
// a newer Succeeded Snapshot that would let it go.
const lastCheckInterval = time.Minute

// protectLast keeps the data of the last Succeeded Snapshot of a
// Repository that lives on: deleting it would leave the Repository with no
// backup to restore. The user lets it go with the annotation
// keepsake.dev/allow-delete-last: "true" (its change wakes the Snapshot
// up); a newer Snapshot succeeding lets it go too. Retention never
// reaches here (its forgotten Snapshots carry storage.keepsake.dev/forgotten),
// nor does a Snapshot whose Repository is being deleted.
func (r *Reconciler) protectLast(ctx context.Context, p *pass) (*ctrl.Result, error) {
	snap := p.snap
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || snap.Annotations[storagev1alpha1.AnnotationAllowDeleteLast] == "true" {
		return nil, nil
	}
	var list storagev1alpha1.SnapshotList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(snap.Namespace)); err != nil {
		return nil, fmt.Errorf("list Snapshots: %w", err)
	}
	for _, other := range list.Items {
		if other.Name != snap.Name && other.Spec.Repository == snap.Spec.Repository &&
			other.Status.Phase == storagev1alpha1.SnapshotSucceeded && other.DeletionTimestamp.IsZero() {
			return nil, nil
		}
	}
	r.setCondition(p, storagev1alpha1.ReasonLastSnapshotProtected, fmt.Sprintf(
		"Snapshot %s is the last Succeeded Snapshot of Repository %s: deleting it would forget the only backup there, so its data is kept and the Snapshot stays. "+
			"To delete it anyway: kubectl annotate snapshot -n %s %s %s=true",
		snap.Name, snap.Spec.Repository, snap.Namespace, snap.Name, storagev1alpha1.AnnotationAllowDeleteLast))
	return &ctrl.Result{RequeueAfter: lastCheckInterval}, nil
}

// repository returns the Snapshot's Repository, or nil when there is none.
// A Repository missing from the cache is looked up past it before the data
// is given up on.
func (r *Reconciler) repository(ctx context.Context, snap *storagev1alpha1.Snapshot) (*storagev1alpha1.Repository, error) {
	var repo storagev1alpha1.Repository
	key := client.ObjectKey{Namespace: snap.Namespace, Name: snap.Spec.Repository}
	err := r.Client.Get(ctx, key, &repo)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, &repo)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Repository %s: %w", key.Name, err)
	}
	return &repo, nil
}

// releaseKeeping ends the pass by releasing the Snapshot without forgetting
// anything, recording an Event of evType when message is set.
func (r *Reconciler) releaseKeeping(p *pass, evType, message string) *ctrl.Result {
	p.release = true
	if message != "" {
		r.Events.Eventf(p.snap, nil, evType, ReasonDataKept, "Forget", message)
	}
	return &ctrl.Result{}
}

// resticIDs lists the distinct restic snapshot IDs of the components, in
// order.
func resticIDs(snap *storagev1alpha1.Snapshot) []string {
	var ids []string
	for _, c := range snap.Status.Components {
		if c.ResticSnapshotID != "" && !slices.Contains(ids, c.ResticSnapshotID) {
			ids = append(ids, c.ResticSnapshotID)
		}
	}
	slices.Sort(ids)
	return ids
}

// setCondition sets the Forgotten condition (always False) and records an
// Event when its reason changes: a Warning for a failure.
func (r *Reconciler) setCondition(p *pass, reason, message string) {
	evType := corev1.EventTypeNormal
	if reason == ReasonForgetFailed || reason == storagev1alpha1.ReasonLastSnapshotProtected {
		evType = corev1.EventTypeWarning
	}
	if status.Set(&p.snap.Status.Conditions, p.snap.Generation, ConditionForgotten, false, reason, message) {
		// A nil *Job in the related interface would not be nil: pass none.
		var related runtime.Object
		if p.job != nil {
			related = p.job
		}
		p.events.Eventf(p.snap, related, evType, reason, "Forget", message)
	}
}
