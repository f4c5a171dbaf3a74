package snapshot_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/access"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
	"github.com/keepsake-dev/keepsake/operator/snapshot"
)

// TestFinalizerFollowsPolicy checks that the forget finalizer is added to
// Snapshots whose data goes with them and removed from those kept.
func TestFinalizerFollowsPolicy(t *testing.T) {
	tests := map[string]struct {
		// policy is the Snapshot's deletionPolicy; "" leaves the default.
		policy storagev1alpha1.SnapshotDeletionPolicy
		// finalizers are the Snapshot's finalizers when created.
		finalizers []string
		// want is whether the forget finalizer must end up there.
		want bool
	}{
		"default policy gets it":           {want: true},
		"WipeOut gets it":                  {policy: storagev1alpha1.SnapshotWipeOut, want: true},
		"Delete, its former name, gets it": {policy: storagev1alpha1.SnapshotDelete, want: true},
		"Retain loses it":                  {policy: storagev1alpha1.SnapshotRetain, finalizers: []string{storagev1alpha1.FinalizerForget}},
		"Retain keeps other finalizer":     {policy: storagev1alpha1.SnapshotRetain, finalizers: []string{storagev1alpha1.FinalizerForget, "example.com/other"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := testenv.Default
			ns := fixtures(t)
			snap := &storagev1alpha1.Snapshot{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "snap", Finalizers: tc.finalizers},
				Spec:       storagev1alpha1.SnapshotSpec{Repository: repoName, DeletionPolicy: tc.policy},
			}
			env.Create(t, snap)
			waitFinalizer(t, snap, tc.want)
			for _, f := range tc.finalizers {
				if f != storagev1alpha1.FinalizerForget && !slices.Contains(snap.Finalizers, f) {
					t.Errorf("finalizer %s was removed: %v", f, snap.Finalizers)
				}
			}
			if tc.policy == storagev1alpha1.SnapshotRetain {
				// Let the object go: envtest has no garbage collector either.
				before := snap.DeepCopy()
				snap.Finalizers = nil
				if err := env.Client.Patch(context.Background(), snap, client.MergeFrom(before)); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestForgetOnDelete follows the deletion of a Snapshot holding data, with
// a newer one in its Repository: one forget Job, found again after an
// operator restart, whose completion lets the Snapshot go and is then
// cleaned up.
func TestForgetOnDelete(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	newSnapshot(t, ns, "db-backup-2-db-repo", repoName, "cccc2222")
	snap := newSnapshot(t, ns, "db-backup-1-db-repo", repoName, "bbbb2222", "aaaa1111", "bbbb2222")
	deleteSnapshot(t, snap)
	job := waitJob(t, snap, "")
	checkJob(t, snap, job)
	env.WaitCondition(t, snap, func() []metav1.Condition { return snap.Status.Conditions },
		snapshot.ConditionForgotten, metav1.ConditionFalse, snapshot.ReasonForgetRunning)

	uid := job.UID
	env.RestartManager(t)
	// The Job's new status reaches the restarted manager's reconciler, which
	// must find the Job rather than start another.
	testenv.FinishJob(t, job, "")
	if job.UID != uid {
		t.Errorf("the Job finished is %s, want the one created before the restart, %s", job.UID, uid)
	}
	waitGone(t, snap)
	if n := len(jobsIn(t, ns)); n > 1 {
		t.Errorf("%d Jobs after a restart, want at most the one", n)
	}
	waitGone(t, job)
	waitGone(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: jobs.SettingsConfigMap(job.Name)}})
	waitEvent(t, ns, snap.Name, snapshot.ReasonForgotten)
}

// checkJob checks what the forget Job runs, as whom, and with what.
func checkJob(t *testing.T, snap *storagev1alpha1.Snapshot, job *batchv1.Job) {
	t.Helper()
	if job.Labels[snapshot.LabelForgetOf] != snap.Name || job.Labels[jobs.LabelManagedBy] != jobs.ManagedBy {
		t.Errorf("Job labels = %v", job.Labels)
	}
	if len(job.OwnerReferences) != 0 {
		t.Errorf("Job owners = %+v, want none", job.OwnerReferences)
	}
	pod := job.Spec.Template.Spec
	// forget reports a lock wait on the Snapshot and asks about the pods
	// locks name: its pods carry the keepsake-forget token, and say where
	// to report.
	if pod.ServiceAccountName != access.Forget.Name || (pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken) {
		t.Errorf("serviceAccountName = %q, automount token %v; want %q with its token",
			pod.ServiceAccountName, pod.AutomountServiceAccountToken, access.Forget.Name)
	}
	task := pod.Containers[0]
	if got := strings.Join(task.Command, " "); got != "/keepsake/bin/keepsake run forget" || task.Image != testenv.Options.Image {
		t.Errorf("task runs %q in %s, want keepsake run forget in %s", got, task.Image, testenv.Options.Image)
	}
	env := map[string]string{}
	for _, e := range task.Env {
		env[e.Name] = e.Value
	}
	if d := job.Spec.ActiveDeadlineSeconds; d == nil || *d != int64(snapshot.ForgetDeadline/time.Second) {
		t.Errorf("forget Job activeDeadlineSeconds = %v, want %s: a hung storage must not hold the deletion forever", d, snapshot.ForgetDeadline)
	}
	if env["KEEPSAKE_REPORT_TO"] != "kubernetes" || env["KEEPSAKE_NAMESPACE"] != snap.Namespace {
		t.Errorf("forget Job env = %v, want it to report to kubernetes in namespace %s", env, snap.Namespace)
	}
	if got := env["KEEPSAKE_SNAPSHOT_ID"]; got != "aaaa1111\nbbbb2222" {
		t.Errorf("KEEPSAKE_SNAPSHOT_ID = %q, want the two distinct IDs, one per line", got)
	}
	if got := env["KEEPSAKE_CACHE_DIR"]; got != jobs.ScratchDir+"/restic-cache" {
		t.Errorf("KEEPSAKE_CACHE_DIR = %q", got)
	}
	repo := env["KEEPSAKE_REPOSITORY"]
	for _, want := range []string{"name=" + repoName, "directory=" + repoPath, "namespace=" + snap.Namespace,
		"password-file=" + jobs.SecretPath(passwordSecret) + "/" + jobs.PasswordKey, "credentials=" + jobs.SecretPath(credsName)} {
		if !strings.Contains(repo, want) || strings.Contains(repo, "\n") {
			t.Errorf("KEEPSAKE_REPOSITORY = %q, want one spec with %q", repo, want)
		}
	}
	var secrets []string
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secrets = append(secrets, v.Secret.SecretName)
		}
	}
	slices.Sort(secrets)
	if want := []string{passwordSecret, credsName}; !slices.Equal(secrets, want) {
		t.Errorf("secret volumes %v, want %v", secrets, want)
	}
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: job.Namespace, Name: jobs.SettingsConfigMap(job.Name)}
	if err := testenv.Default.Client.Get(context.Background(), key, &cm); err != nil {
		t.Errorf("settings ConfigMap: %v", err)
	}
}

// TestForgetRetries fails the forget Job: the Snapshot keeps its finalizer
// and says why, and a new Job starts after a delay.
func TestForgetRetries(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	snap := newSnapshot(t, ns, "snap", repoName, "cccc3333")
	allowDeleteLast(t, snap)
	deleteSnapshot(t, snap)
	first := waitJob(t, snap, "")
	testenv.FinishJob(t, first, "BackoffLimitExceeded")
	c := env.WaitCondition(t, snap, func() []metav1.Condition { return snap.Status.Conditions },
		snapshot.ConditionForgotten, metav1.ConditionFalse, snapshot.ReasonForgetFailed)
	if !strings.Contains(c.Message, first.Name) || !strings.Contains(c.Message, "set by the test") {
		t.Errorf("condition message %q names neither the Job nor its failure", c.Message)
	}
	if !slices.Contains(snap.Finalizers, storagev1alpha1.FinalizerForget) {
		t.Errorf("finalizers %v after a failure, want the forget finalizer", snap.Finalizers)
	}
	waitEvent(t, ns, snap.Name, snapshot.ReasonForgetFailed)

	second := waitJob(t, snap, string(first.UID))
	testenv.FinishJob(t, second, "")
	waitGone(t, snap)
}

// TestReleaseWithoutJob checks the Snapshots whose deletion needs no
// forget Job.
func TestReleaseWithoutJob(t *testing.T) {
	tests := map[string]struct {
		// ids are the restic snapshots recorded in the Snapshot.
		ids []string
		// repo is the Snapshot's Repository.
		repo string
		// prepare changes the namespace before the Snapshot is deleted.
		prepare func(t *testing.T, ns string, snap *storagev1alpha1.Snapshot)
		// wantEvent is the reason of an Event expected about the Snapshot;
		// "" expects none in particular.
		wantEvent string
	}{
		"already forgotten": {
			ids: []string{"dddd4444"}, repo: repoName,
			prepare: func(t *testing.T, ns string, snap *storagev1alpha1.Snapshot) {
				before := snap.DeepCopy()
				snap.Annotations = map[string]string{storagev1alpha1.AnnotationForgotten: "true"}
				if err := testenv.Default.Client.Patch(context.Background(), snap, client.MergeFrom(before)); err != nil {
					t.Fatal(err)
				}
			},
		},
		"nothing stored": {repo: repoName},
		"repository gone": {
			ids: []string{"eeee5555"}, repo: "no-such-repo", wantEvent: snapshot.ReasonDataKept,
		},
		"repository being deleted": {
			ids: []string{"ffff6666"}, repo: "going",
			prepare: func(t *testing.T, ns string, _ *storagev1alpha1.Snapshot) {
				// A finalizer holds the Repository in its deletion, as a
				// foreground deletion of it would.
				repo := repository(ns, "going")
				repo.Finalizers = []string{"example.com/hold"}
				testenv.Default.Create(t, repo)
				if err := testenv.Default.Client.Delete(context.Background(), repo); err != nil {
					t.Fatal(err)
				}
			},
			wantEvent: snapshot.ReasonDataKept,
		},
		"storage gone": {
			ids: []string{"abab7777"}, repo: repoName,
			prepare: func(t *testing.T, ns string, snap *storagev1alpha1.Snapshot) {
				allowDeleteLast(t, snap)
				bs := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: storageName}}
				if err := testenv.Default.Client.Delete(context.Background(), bs); err != nil {
					t.Fatal(err)
				}
				waitGone(t, bs)
			},
			wantEvent: corev1alpha1.ReasonStorageNotFound,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := fixtures(t)
			snap := newSnapshot(t, ns, "snap", tc.repo, tc.ids...)
			if tc.prepare != nil {
				tc.prepare(t, ns, snap)
			}
			deleteSnapshot(t, snap)
			waitGone(t, snap)
			if tc.wantEvent != "" {
				waitEvent(t, ns, snap.Name, tc.wantEvent)
			}
			if got := jobsIn(t, ns); len(got) != 0 {
				t.Errorf("%d Jobs, want none: %s", len(got), got[0].Name)
			}
			var cm corev1.ConfigMap
			key := client.ObjectKey{Namespace: ns, Name: jobs.SettingsConfigMap(snapshot.JobName(snap.Name))}
			if err := testenv.Default.Client.Get(context.Background(), key, &cm); !apierrors.IsNotFound(err) {
				t.Errorf("settings ConfigMap: err = %v, want NotFound", err)
			}
		})
	}
}

// TestLastSnapshotProtected checks that deleting the last Succeeded
// Snapshot of a Repository forgets nothing until the user says so with
// the annotation the condition and the Warning Event name, and that the
// annotation then lets it go through a forget Job.
func TestLastSnapshotProtected(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	// A failed Snapshot of the same Repository protects nothing.
	failed := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "failed"},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: repoName},
	}
	env.Create(t, failed)
	snap := newSnapshot(t, ns, "only", repoName, "abcd1234")
	deleteSnapshot(t, snap)
	c := env.WaitCondition(t, snap, func() []metav1.Condition { return snap.Status.Conditions },
		snapshot.ConditionForgotten, metav1.ConditionFalse, storagev1alpha1.ReasonLastSnapshotProtected)
	want := "kubectl annotate snapshot -n " + ns + " only " + storagev1alpha1.AnnotationAllowDeleteLast + "=true"
	if !strings.Contains(c.Message, want) || !strings.Contains(c.Message, "last Succeeded Snapshot of Repository "+repoName) {
		t.Errorf("condition message %q does not say why and how: want %q", c.Message, want)
	}
	waitEvent(t, ns, snap.Name, storagev1alpha1.ReasonLastSnapshotProtected)
	if got := jobsIn(t, ns); len(got) != 0 {
		t.Errorf("forget Job %s created for the last Snapshot", got[0].Name)
	}

	allowDeleteLast(t, snap)
	testenv.FinishJob(t, waitJob(t, snap, ""), "")
	waitGone(t, snap)
}

// allowDeleteLast annotates snap so that it may go although it is the last
// Succeeded Snapshot of its Repository.
func allowDeleteLast(t *testing.T, snap *storagev1alpha1.Snapshot) {
	t.Helper()
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := testenv.Default.Client.Get(ctx, client.ObjectKeyFromObject(snap), snap); err != nil {
			return false, err.Error()
		}
		before := snap.DeepCopy()
		if snap.Annotations == nil {
			snap.Annotations = map[string]string{}
		}
		snap.Annotations[storagev1alpha1.AnnotationAllowDeleteLast] = "true"
		if err := testenv.Default.Client.Patch(ctx, snap, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}
