package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/test/demo"
)

// faults injects what goes wrong in real use, in a namespace of its own:
// a repository password that no longer opens the repository, a burst of
// sessions under Forbid, a backup pod killed mid-upload, the operator
// killed mid-restore, forget racing a backup and a restore, and a
// corrupted pack. Each asserts what the user sees and that no backup that
// succeeded was lost (docs/testing.md has the fault matrix).
func faults(t *testing.T, e *demo.Env) {
	hyperbytedbtest.Mixed(time.Now()).Write(t, e.DB)
	t.Run("wrong repository password", func(t *testing.T) { wrongPassword(t, e) })
	t.Run("ten sessions at once under Forbid", func(t *testing.T) { burst(t, e) })
	t.Run("backup pod killed mid-upload", func(t *testing.T) { backupPodKilled(t, e) })
	t.Run("forget racing a backup and a restore", func(t *testing.T) { forgetRace(t, e) })
	t.Run("corrupted pack", func(t *testing.T) { corruptedPack(t, e) })
}

// oneShot is a BackupConfiguration whose schedule never comes within a
// test; its first session runs at once, and BackupSessions start the
// others. It keeps the history of twenty sessions. Its repository is
// encrypted with Secret, on BackupStorage Storage (default minio), and a
// backup may take Timeout (default 10m).
const oneShot = `
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupConfiguration
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: metrics}
  backends:
    - name: minio
      storageRef: {name: {{or (index . "Storage") "minio"}}}
  sessions:
    - name: manual
      scheduler: {schedule: "0 0 1 1 *"}
      addon:
        name: hyperbytedb
        tasks:
          - name: logical-backup
            params: {authSecret: metrics-auth}
      repositories:
        - name: {{.Name}}-repo
          backend: minio
          directory: {{.Name}}
          encryptionSecret: {name: {{.Secret}}}
      backupTimeout: {{or (index . "Timeout") "10m"}}
      sessionHistoryLimit: 20
`

// backupSession starts session manual of configuration config once.
const backupSession = `
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupSession
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec: {backupConfiguration: {{.Config}}, session: manual}
`

func apply(t *testing.T, e *demo.Env, tmpl string, data map[string]string) {
	t.Helper()
	data["Namespace"] = e.Params.Namespace
	if err := e.Stand.Apply(demo.Context(t, time.Minute), tmpl, data); err != nil {
		t.Fatal(err)
	}
}

// wrongPassword: the encryption Secret of a repository that holds a backup
// is changed to another password. The next BackupSession fails once, with a
// reason saying the password is wrong, from one Job whose one pod ran: no
// retry storm. The backup made before is still there.
func wrongPassword(t *testing.T, e *demo.Env) {
	e = e.With(t)
	secret := map[string]string{"Name": "changing-password", "Password": e.Params.ResticPassword}
	const passwordSecret = `
apiVersion: v1
kind: Secret
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
stringData: {RESTIC_PASSWORD: "{{.Password}}"}
`
	apply(t, e, passwordSecret, secret)
	apply(t, e, oneShot, map[string]string{"Name": "password", "Secret": "changing-password"})
	e.WaitBackupSession(backupconfiguration.FirstSessionName("password", "manual"), corev1alpha1.BackupSessionSucceeded)

	secret["Password"] = "not the password the repository was made with"
	apply(t, e, passwordSecret, secret)
	apply(t, e, backupSession, map[string]string{"Name": "password-wrong", "Config": "password"})
	bks := e.WaitBackupSession("password-wrong", corev1alpha1.BackupSessionFailed)
	c := meta.FindStatusCondition(bks.Status.Conditions, corev1alpha1.ConditionBackupSucceeded)
	if c == nil || !strings.Contains(strings.ToLower(c.Message), "password") {
		t.Errorf("BackupSucceeded condition = %+v, want a message saying the repository password is wrong", c)
	} else {
		t.Logf("as the user sees it: %s: %s", c.Reason, c.Message)
	}
	jobs := sessionJobs(t, e, "password-wrong")
	if len(jobs) != 1 {
		t.Fatalf("BackupSession password-wrong made %d Jobs, want 1", len(jobs))
	}
	var pods corev1.PodList
	// A context of its own: the waits above can take minutes.
	if err := e.Kube.List(demo.Context(t, time.Minute), &pods, client.InNamespace(e.Params.Namespace), client.MatchingLabels{"job-name": jobs[0].Name}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Errorf("Job %s ran %d pods, want 1 (a wrong password is not retried)", jobs[0].Name, len(pods.Items))
	}
	if ids := resticIDs(t, e.Restic("password")); len(ids) != 1 {
		t.Errorf("the repository holds restic snapshots %v, want the one backup made with the right password", ids)
	}
}

// sessionJobs lists the Jobs of BackupSession name.
func sessionJobs(t *testing.T, e *demo.Env, name string) []batchv1.Job {
	t.Helper()
	var jobs batchv1.JobList
	if err := e.Kube.List(demo.Context(t, time.Minute), &jobs, client.InNamespace(e.Params.Namespace),
		client.MatchingLabels{corev1alpha1.LabelBackupSession: name}); err != nil {
		t.Fatal(err)
	}
	return jobs.Items
}

// burst: ten BackupSessions of one Forbid session are created at once. Each
// ends Succeeded or Skipped, at least one Succeeded, and no two of their
// Jobs ran at the same time.
func burst(t *testing.T, e *demo.Env) {
	e = e.With(t)
	apply(t, e, oneShot, map[string]string{"Name": "burst", "Secret": "restic-password"})
	first := e.WaitBackupSession(backupconfiguration.FirstSessionName("burst", "manual"), corev1alpha1.BackupSessionSucceeded)
	var manifest strings.Builder
	for i := range 10 {
		fmt.Fprintf(&manifest, "---\n%s", strings.NewReplacer("{{.Name}}", fmt.Sprintf("burst-%d", i), "{{.Config}}", "burst").Replace(backupSession))
	}
	apply(t, e, manifest.String(), map[string]string{})
	succeeded := 0
	var runs []interval
	for i := range 10 {
		name := fmt.Sprintf("burst-%d", i)
		var bks corev1alpha1.BackupSession
		waitObject(t, e, e.Params.Namespace, name, &bks, func(b *corev1alpha1.BackupSession) (bool, string) {
			return b.IsFinished(), string(b.Status.Phase)
		})
		switch bks.Status.Phase {
		case corev1alpha1.BackupSessionSucceeded:
			succeeded++
		case corev1alpha1.BackupSessionSkipped:
		default:
			t.Errorf("BackupSession %s ended %s: %s", name, bks.Status.Phase, failure(bks.Status.Conditions))
		}
		for _, j := range sessionJobs(t, e, name) {
			runs = append(runs, jobInterval(t, &j))
		}
	}
	if succeeded == 0 {
		t.Errorf("none of the ten BackupSessions succeeded")
	}
	runs = append(runs, jobInterval(t, &sessionJobs(t, e, first.Name)[0]))
	if a, b, ok := overlap(runs); ok {
		t.Errorf("Jobs %s (%s) and %s (%s) ran at the same time under Forbid", a.job, a, b.job, b)
	}
	t.Logf("%d of 10 BackupSessions ran (one Job each, one after the other), the others were Skipped", succeeded)
}

// interval is when a Job ran: from its start to its end.
type interval struct {
	job        string
	start, end time.Time
}

func (i interval) String() string {
	return i.start.Format(time.TimeOnly) + "-" + i.end.Format(time.TimeOnly)
}

// jobInterval reads when a finished Job ran.
func jobInterval(t *testing.T, j *batchv1.Job) interval {
	t.Helper()
	if j.Status.StartTime == nil {
		t.Fatalf("Job %s never started", j.Name)
	}
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return interval{job: j.Name, start: j.Status.StartTime.Time, end: c.LastTransitionTime.Time}
		}
	}
	t.Fatalf("Job %s has not ended: %+v", j.Name, j.Status)
	return interval{}
}

// overlap returns two intervals that overlap, if any do.
func overlap(runs []interval) (interval, interval, bool) {
	sort.Slice(runs, func(i, j int) bool { return runs[i].start.Before(runs[j].start) })
	for i := 1; i < len(runs); i++ {
		if runs[i].start.Before(runs[i-1].end) {
			return runs[i-1], runs[i], true
		}
	}
	return interval{}, interval{}, false
}

// backupPodKilled: the backup pod is force-deleted while it uploads. Its
// session fails and its Snapshot is not Succeeded; the next backup
// succeeds and restores every point; restic holds no snapshot of the killed
// run, and no lock is left behind.
func backupPodKilled(t *testing.T, e *demo.Env) {
	e = e.With(t)
	bulk := hyperbytedbtest.Bulk{DB: "bulk", N: 300_000, Series: 100}
	bulk.Write(t, e.DB, 0, bulk.N)
	want := hyperbytedbtest.ReadContents(t, e.DB)
	apply(t, e, oneShot, map[string]string{"Name": "killed", "Secret": "restic-password"})
	session := backupconfiguration.FirstSessionName("killed", "manual")
	pod := waitBackupPodRunning(t, e, session)
	t.Logf("force-deleting backup pod %s", pod)
	if _, err := e.Kubectl(demo.Context(t, time.Minute), "delete", "pod", "-n", e.Params.Namespace, pod, "--grace-period=0", "--force", "--wait=false"); err != nil {
		t.Fatal(err)
	}
	killed := e.WaitBackupSession(session, corev1alpha1.BackupSessionFailed)
	t.Logf("as the user sees it: %s", failure(killed.Status.Conditions))
	if c := meta.FindStatusCondition(killed.Status.Conditions, corev1alpha1.ConditionBackupSucceeded); c == nil ||
		c.Reason != corev1alpha1.ReasonPodDeleted || !strings.Contains(c.Message, "deleted") {
		t.Errorf("BackupSucceeded condition = %+v, want reason %s saying the pod was deleted", c, corev1alpha1.ReasonPodDeleted)
	}
	logTimeToFinal(t, killed.CreationTimestamp.Time, killed.Status.Conditions)
	for _, s := range e.Snapshots("killed-repo") {
		if s.Status.Phase == storagev1alpha1.SnapshotSucceeded {
			t.Errorf("Snapshot %s of the killed backup is Succeeded", s.Name)
		}
	}
	if ids := resticIDs(t, e.Restic("killed")); len(ids) != 0 {
		t.Errorf("the killed backup left restic snapshots %v", ids)
	}

	apply(t, e, backupSession, map[string]string{"Name": "killed-again", "Config": "killed"})
	next := e.WaitBackupSession("killed-again", corev1alpha1.BackupSessionSucceeded)
	locks, err := e.Restic("killed").Locks(demo.Context(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 0 {
		t.Errorf("locks left in the repository after the next backup: %v", locks)
	}
	e.DropAll()
	e.Apply(demo.RestoreSession, func(p *demo.Params) {
		p.Name, p.Repository, p.Snapshot = "after-kill", "killed-repo", next.Status.Snapshots[0].Name
	})
	e.WaitRestoreSession("after-kill", corev1alpha1.RestoreSucceeded)
	if diff := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, e.DB), 10); diff != "" {
		t.Fatalf("restored database differs:\n%s", diff)
	}
	t.Run("operator killed mid-restore", func(t *testing.T) { operatorKilledMidRestore(t, e, next.Status.Snapshots[0].Name, want) })
}

// logTimeToFinal logs how long a session took from its creation to its
// last condition change: reported, never asserted (speed is for
// benchmarks).
func logTimeToFinal(t *testing.T, created time.Time, conds []metav1.Condition) {
	t.Helper()
	var last time.Time
	for _, c := range conds {
		if c.LastTransitionTime.After(last) {
			last = c.LastTransitionTime.Time
		}
	}
	t.Logf("time to the final state: %s", last.Sub(created).Round(time.Second))
}

// operatorKilledMidRestore: the operator pod is deleted while a restore
// Job runs. The RestoreSession ends Succeeded once, with one Job, and
// every point comes back.
func operatorKilledMidRestore(t *testing.T, e *demo.Env, snapshot string, want hyperbytedbtest.Contents) {
	e = e.With(t)
	e.DropAll()
	e.Apply(demo.RestoreSession, func(p *demo.Params) {
		p.Name, p.Repository, p.Snapshot = "operator-killed", "killed-repo", snapshot
	})
	selector := client.MatchingLabels{corev1alpha1.LabelRestoreSession: "operator-killed"}
	err := demo.Poll(demo.Context(t, demo.Timeout), "the restore pod running", func(ctx context.Context) (bool, string, error) {
		var jobs batchv1.JobList
		if err := e.Kube.List(ctx, &jobs, client.InNamespace(e.Params.Namespace), selector); err != nil || len(jobs.Items) == 0 {
			return false, "no Job yet", err
		}
		st := jobs.Items[0].Status
		if st.Succeeded+st.Failed > 0 {
			return false, "", fmt.Errorf("the restore Job ended before the operator could be killed mid-restore: %+v", st)
		}
		return st.Ready != nil && *st.Ready > 0, fmt.Sprintf("Job status %+v", st), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := e.OperatorPods(demo.Context(t, time.Minute))
	if err != nil || len(pods) != 1 {
		t.Fatalf("operator pods: %d, %v", len(pods), err)
	}
	t.Logf("deleting operator pod %s while the restore runs", pods[0].Name)
	if _, err := e.Kubectl(demo.Context(t, time.Minute), "delete", "pod", "-n", demo.OperatorNamespace, pods[0].Name, "--wait=false"); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitOperatorReady(demo.Context(t, demo.Timeout)); err != nil {
		t.Fatal(err)
	}
	rs := e.WaitRestoreSession("operator-killed", corev1alpha1.RestoreSucceeded)
	logTimeToFinal(t, rs.CreationTimestamp.Time, rs.Status.Conditions)
	var jobs batchv1.JobList
	if err := e.Kube.List(demo.Context(t, time.Minute), &jobs, client.InNamespace(e.Params.Namespace), selector); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Errorf("RestoreSession operator-killed ran %d Jobs, want 1", len(jobs.Items))
	}
	if diff := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, e.DB), 10); diff != "" {
		t.Fatalf("restored database differs:\n%s", diff)
	}
}

// waitBackupPodRunning waits until the Job of session has a Ready pod and
// returns the pod's name.
func waitBackupPodRunning(t *testing.T, e *demo.Env, session string) string {
	t.Helper()
	return waitPodReady(t, e, "the backup pod of "+session, client.MatchingLabels{"job-name": session})
}

// waitPodReady waits until a pod of the layout's namespace matching
// selector is Ready, and returns its name; a pod that ends first fails
// the test (the fault it waits to inject would come too late).
func waitPodReady(t *testing.T, e *demo.Env, what string, selector client.MatchingLabels) string {
	t.Helper()
	var name string
	err := demo.Poll(demo.Context(t, demo.Timeout), what+" running", func(ctx context.Context) (bool, string, error) {
		var pods corev1.PodList
		if err := e.Kube.List(ctx, &pods, client.InNamespace(e.Params.Namespace), selector); err != nil {
			return false, "", err
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				return false, "", fmt.Errorf("%s ended (%s) before the fault could be injected", what, p.Status.Phase)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					name = p.Name
					return true, "", nil
				}
			}
		}
		return false, fmt.Sprintf("%d pods", len(pods.Items)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// forgetRace: on one repository, a Snapshot is deleted (its forget Job
// prunes, under restic's exclusive lock) at the moment a backup and a
// restore start (shared locks). All three succeed, whichever waits; the
// restore brings back every point and restic keeps exactly what was not
// forgotten.
func forgetRace(t *testing.T, e *demo.Env) {
	e = e.With(t)
	apply(t, e, oneShot, map[string]string{"Name": "race", "Secret": "restic-password"})
	e.WaitBackupSession(backupconfiguration.FirstSessionName("race", "manual"), corev1alpha1.BackupSessionSucceeded)
	apply(t, e, backupSession, map[string]string{"Name": "race-second", "Config": "race"})
	e.WaitBackupSession("race-second", corev1alpha1.BackupSessionSucceeded)
	want := hyperbytedbtest.ReadContents(t, e.DB)
	snaps := e.Snapshots("race-repo")
	if len(snaps) != 2 {
		t.Fatalf("Repository race-repo has %d Snapshots, want 2", len(snaps))
	}
	forgotten, kept := snaps[0], snaps[1]

	e.DropAll()
	racers := strings.NewReplacer("{{.Name}}", "race-third", "{{.Config}}", "race").Replace(backupSession) + "---\n" +
		strings.NewReplacer("{{.Name}}", "race-restore", "{{.Repository}}", "race-repo", "{{.Snapshot}}", kept.Name).Replace(demo.RestoreSession)
	apply(t, e, racers, map[string]string{})
	deleteAndWait(t, e, &forgotten)
	third := e.WaitBackupSession("race-third", corev1alpha1.BackupSessionSucceeded)
	e.WaitRestoreSession("race-restore", corev1alpha1.RestoreSucceeded)
	if diff := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, e.DB), 10); diff != "" {
		t.Fatalf("restored database differs:\n%s", diff)
	}
	var thirdSnap storagev1alpha1.Snapshot
	if err := e.Kube.Get(demo.Context(t, time.Minute), client.ObjectKey{Namespace: e.Params.Namespace, Name: third.Status.Snapshots[0].Name}, &thirdSnap); err != nil {
		t.Fatal(err)
	}
	stored := resticIDs(t, e.Restic("race"))
	for _, s := range []storagev1alpha1.Snapshot{kept, thirdSnap} {
		if id := s.Status.Components["logical-backup"].ResticSnapshotID; !containsID(stored, id) {
			t.Errorf("restic snapshot %s of Snapshot %s is gone (restic holds %v)", id, s.Name, stored)
		}
	}
	if id := forgotten.Status.Components["logical-backup"].ResticSnapshotID; containsID(stored, id) {
		t.Errorf("restic snapshot %s of deleted Snapshot %s is still there", id, forgotten.Name)
	}
}

// containsID reports whether restic IDs hold id, either written in full or
// shortened.
func containsID(ids []string, id string) bool {
	for _, s := range ids {
		if id != "" && (strings.HasPrefix(s, id) || strings.HasPrefix(id, s)) {
			return true
		}
	}
	return false
}
