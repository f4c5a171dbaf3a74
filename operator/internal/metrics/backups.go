package metrics

import (
	"cmp"
	"context"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/robfig/cron/v3"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/status"
)

// sessionKey names one session of one BackupConfiguration.
type sessionKey struct{ namespace, configuration, session string }

func (k sessionKey) labels(extra ...string) []string {
	return append([]string{k.namespace, k.configuration, k.session}, extra...)
}

// collectBackups sends the per-configuration and per-session metrics.
func collectBackups(ctx context.Context, r client.Reader, emit emitter) {
	log := logf.FromContext(ctx).WithName("metrics")
	var configs corev1alpha1.BackupConfigurationList
	if err := r.List(ctx, &configs); err != nil {
		log.Error(err, "list BackupConfigurations")
		return
	}
	for i := range configs.Items {
		collectConfiguration(&configs.Items[i], emit)
	}
	var sessions corev1alpha1.BackupSessionList
	if err := r.List(ctx, &sessions); err != nil {
		log.Error(err, "list BackupSessions")
		return
	}
	newest := collectSessions(sessions.Items, emit)
	var snaps storagev1alpha1.SnapshotList
	if err := r.List(ctx, &snaps); err != nil {
		log.Error(err, "list Snapshots")
		return
	}
	collectSnapshots(newest, snaps.Items, emit)
}

// collectConfiguration sends readiness, last success and schedule.
func collectConfiguration(bc *corev1alpha1.BackupConfiguration, emit emitter) {
	emit(configurationReady, boolValue(status.IsTrue(bc.Status.Conditions, corev1alpha1.ConditionReady)),
		bc.Namespace, bc.Name, string(bc.Status.Phase))
	for _, s := range bc.Status.Sessions {
		key := sessionKey{bc.Namespace, bc.Name, s.Name}
		if s.LastSuccessfulBackup != nil {
			emit(backupLastSuccess, unix(s.LastSuccessfulBackup.Time), key.labels()...)
		}
		if s.NextSchedule != nil {
			emit(backupNextSchedule, unix(s.NextSchedule.Time), key.labels()...)
		}
	}
	for _, s := range bc.Spec.Sessions {
		if interval, ok := scheduleInterval(s.Scheduler.Schedule); ok {
			emit(backupInterval, interval.Seconds(), sessionKey{bc.Namespace, bc.Name, s.Name}.labels()...)
		}
	}
}

// scheduleInterval is the time between the schedule's next two runs.
func scheduleInterval(spec string) (time.Duration, bool) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return 0, false
	}
	next := sched.Next(time.Now())
	return sched.Next(next).Sub(next), true
}

// collectSessions sends the counts by phase and the newest finished run's
// outcome, and returns each session's newest successful BackupSession.
func collectSessions(items []corev1alpha1.BackupSession, emit emitter) map[sessionKey]*corev1alpha1.BackupSession {
	counts := map[sessionKey]map[corev1alpha1.BackupSessionPhase]int{}
	finished := map[sessionKey]*corev1alpha1.BackupSession{}
	succeeded := map[sessionKey]*corev1alpha1.BackupSession{}
	for i := range items {
		b := &items[i]
		key := sessionKey{b.Namespace, b.Spec.BackupConfiguration, b.Spec.Session}
		if counts[key] == nil {
			counts[key] = map[corev1alpha1.BackupSessionPhase]int{}
		}
		counts[key][cmp.Or(b.Status.Phase, corev1alpha1.BackupSessionPending)]++
		if b.Status.CompletionTime == nil {
			continue
		}
		switch b.Status.Phase {
		case corev1alpha1.BackupSessionSucceeded:
			keepNewer(succeeded, key, b)
			keepNewer(finished, key, b)
		case corev1alpha1.BackupSessionFailed:
			keepNewer(finished, key, b)
		}
	}
	for key, byPhase := range counts {
		for phase, n := range byPhase {
			emit(backupSessions, float64(n), key.labels(string(phase))...)
		}
	}
	for key, b := range finished {
		emit(backupLastCompletion, unix(b.Status.CompletionTime.Time), key.labels()...)
		emit(backupLastFailed, boolValue(b.Status.Phase == corev1alpha1.BackupSessionFailed), key.labels()...)
		if b.Status.StartTime != nil {
			emit(backupLastDuration, b.Status.CompletionTime.Sub(b.Status.StartTime.Time).Seconds(), key.labels()...)
		}
	}
	return succeeded
}

// keepNewer keeps b in m when it completed after what m holds.
func keepNewer(m map[sessionKey]*corev1alpha1.BackupSession, key sessionKey, b *corev1alpha1.BackupSession) {
	if have, ok := m[key]; !ok || have.Status.CompletionTime.Before(b.Status.CompletionTime) {
		m[key] = b
	}
}

// collectSnapshots sends the dump size and bytes added of each session's
// newest successful backup, by repository.
func collectSnapshots(newest map[sessionKey]*corev1alpha1.BackupSession, snaps []storagev1alpha1.Snapshot, emit emitter) {
	byName := map[string]*storagev1alpha1.Snapshot{}
	for i := range snaps {
		byName[snaps[i].Namespace+"/"+snaps[i].Name] = &snaps[i]
	}
	for key, b := range newest {
		for _, ref := range b.Status.Snapshots {
			snap, ok := byName[b.Namespace+"/"+ref.Name]
			if !ok {
				continue
			}
			dump, added := componentBytes(&snap.Status)
			emit(backupDumpBytes, float64(dump), key.labels(ref.Repository)...)
			emit(backupAddedBytes, float64(added), key.labels(ref.Repository)...)
		}
	}
}

// componentBytes sums a Snapshot's components: dump size and bytes added.
func componentBytes(st *storagev1alpha1.SnapshotStatus) (dump, added uint64) {
	for _, c := range st.Components {
		dump += uint64(max(c.SizeBytes, 0))
		if n, err := humanize.ParseBytes(c.DataAdded); err == nil {
			added += n
		}
	}
	return dump, added
}

// unix is t in fractional Unix seconds.
func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
