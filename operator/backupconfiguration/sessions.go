package backupconfiguration

import (
	"context"
	"fmt"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// recentBackupsShown is how many BackupSessions status.sessions lists.
const recentBackupsShown = 5

// FirstSessionName is the name of the immediate first BackupSession of a
// session. It is deterministic, so that creating it twice fails instead of
// running two backups; it stays below 63 characters so it fits in labels.
func FirstSessionName(config, session string) string {
	return CronJobName(config, session) + "-first"
}

// ensureFirstSessions creates, once per session, a BackupSession that runs
// at once rather than at the first schedule. The CronJob's annotation
// remembers that it was created, even after the BackupSession is pruned by
// its history limit. Paused and suspended sessions get theirs when resumed.
// They are created once the configuration is recorded Ready, by the pass
// after the one that found it so: a BackupSession created earlier would
// read its configuration NotReady and wait for it.
func (r *Reconciler) ensureFirstSessions(ctx context.Context, p *pass) (*ctrl.Result, error) {
	if p.bc.Spec.Paused {
		return nil, nil
	}
	if !p.wasReady {
		p.firstPending = true
		return nil, nil
	}
	for _, s := range p.bc.Spec.Sessions {
		if s.Scheduler.Suspend {
			continue
		}
		if err := r.ensureFirstSession(ctx, p, s.Name); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (r *Reconciler) ensureFirstSession(ctx context.Context, p *pass, session string) error {
	cj := p.cronJobs[session]
	if cj.Annotations[corev1alpha1.AnnotationFirstBackupSession] != "" {
		return nil
	}
	// The cache may lag behind the annotation written by a previous pass.
	var live batchv1.CronJob
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cj), &live); err != nil {
		return fmt.Errorf("get CronJob %s: %w", cj.Name, err)
	}
	if live.Annotations[corev1alpha1.AnnotationFirstBackupSession] != "" {
		return nil
	}
	name := FirstSessionName(p.bc.Name, session)
	if err := r.createFirstSession(ctx, p, session, name); err != nil {
		return err
	}
	base := live.DeepCopy()
	if live.Annotations == nil {
		live.Annotations = map[string]string{}
	}
	live.Annotations[corev1alpha1.AnnotationFirstBackupSession] = name
	if err := r.Client.Patch(ctx, &live, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("mark first BackupSession on CronJob %s: %w", cj.Name, err)
	}
	return nil
}

// createFirstSession creates the BackupSession; one that already exists is
// the one a previous pass created before it could mark the CronJob.
func (r *Reconciler) createFirstSession(ctx context.Context, p *pass, session, name string) error {
	bks := &corev1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: p.bc.Namespace,
			Name:      name,
			Labels: map[string]string{
				corev1alpha1.LabelBackupConfiguration: p.bc.Name,
				corev1alpha1.LabelSession:             session,
			},
			// Owned, not controlled: the BackupSession reconciler drives it.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: corev1alpha1.GroupVersion.String(),
				Kind:       "BackupConfiguration",
				Name:       p.bc.Name,
				UID:        p.bc.UID,
			}},
		},
		Spec: corev1alpha1.BackupSessionSpec{BackupConfiguration: p.bc.Name, Session: session},
	}
	err := r.Client.Create(ctx, bks)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create BackupSession %s: %w", name, err)
	}
	r.Events.Eventf(p.bc, bks, corev1.EventTypeNormal, "BackupSessionCreated", "Reconcile",
		"created BackupSession %s: the first backup of session %s", name, session)
	return nil
}

// summarizeSessions fills status.sessions: the next schedule and the latest
// BackupSessions of each session.
func (r *Reconciler) summarizeSessions(ctx context.Context, p *pass) (*ctrl.Result, error) {
	var list corev1alpha1.BackupSessionList
	if err := r.Client.List(ctx, &list, client.InNamespace(p.bc.Namespace),
		client.MatchingFields{IndexBackupSessionConfiguration: p.bc.Name}); err != nil {
		return nil, fmt.Errorf("list BackupSessions: %w", err)
	}
	bySession := map[string][]corev1alpha1.BackupSession{}
	for _, b := range list.Items {
		bySession[b.Spec.Session] = append(bySession[b.Spec.Session], b)
	}
	// The latest success outlives its BackupSession: history pruning may
	// delete it after failed runs, and "no recent backup" is measured from it.
	lastSuccess := map[string]*metav1.Time{}
	for _, st := range p.bc.Status.Sessions {
		lastSuccess[st.Name] = st.LastSuccessfulBackup
	}
	out := make([]corev1alpha1.SessionStatus, 0, len(p.bc.Spec.Sessions))
	for _, s := range p.bc.Spec.Sessions {
		st := summarize(s.Name, bySession[s.Name], lastSuccess[s.Name])
		if !p.bc.Spec.Paused && !s.Scheduler.Suspend {
			next := p.schedules[s.Name].Next(p.now.In(p.locations[s.Name]))
			st.NextSchedule = ptr.To(metav1.NewTime(next))
		}
		out = append(out, st)
	}
	p.bc.Status.Sessions = out
	return nil, nil
}

// summarize lists a session's newest BackupSessions and its latest
// success: the newest of lastSuccess (what the status held) and the
// successful runs that remain.
func summarize(session string, runs []corev1alpha1.BackupSession, lastSuccess *metav1.Time) corev1alpha1.SessionStatus {
	sort.Slice(runs, func(i, j int) bool {
		return runs[j].CreationTimestamp.Before(&runs[i].CreationTimestamp)
	})
	st := corev1alpha1.SessionStatus{Name: session, LastSuccessfulBackup: lastSuccess.DeepCopy()}
	for i, b := range runs {
		if b.Status.Phase == corev1alpha1.BackupSessionSucceeded && b.Status.CompletionTime != nil &&
			(st.LastSuccessfulBackup == nil || st.LastSuccessfulBackup.Before(b.Status.CompletionTime)) {
			st.LastSuccessfulBackup = b.Status.CompletionTime.DeepCopy()
		}
		if i < recentBackupsShown {
			phase := b.Status.Phase
			if phase == "" {
				phase = corev1alpha1.BackupSessionPending
			}
			st.RecentBackups = append(st.RecentBackups, corev1alpha1.BackupSessionSummary{
				Name:      b.Name,
				Phase:     phase,
				StartTime: ptr.To(b.CreationTimestamp),
				Duration:  b.Status.Duration,
			})
		}
	}
	return st
}
