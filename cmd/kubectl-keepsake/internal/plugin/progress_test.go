package plugin

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// syncBuffer is a bytes.Buffer the plugin writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBackupWaitShowsProgress runs `kubectl keepsake backup BC --wait`
// against a kube-apiserver while the test plays the operator and the
// backup Job: the Snapshot's progress, patched as the Job patches it,
// shows as progress lines (stdout is no terminal), with the estimated
// total and its share, and a storage restic retries shows in the status
// line; then the backup ends and the command succeeds.
func TestBackupWaitShowsProgress(t *testing.T) {
	c, kubeconfig := startAPI(t)
	defer func(every time.Duration) { progressLineEvery = every }(progressLineEvery)
	progressLineEvery = 0 // each poll that sees new numbers prints them
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.Create(ctx, progressConfig()); err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- Run(ctx, []string{"--kubeconfig", kubeconfig, "-n", "default", "backup", "db-backup", "--wait"}, &out, &errOut)
	}()

	bks := startedSession(ctx, t, c)
	snap := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: bks.Name + "-primary"},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: "primary", BackupSession: bks.Name},
	}
	if err := c.Create(ctx, snap); err != nil {
		t.Fatal(err)
	}
	bks.Status.Phase = corev1alpha1.BackupSessionRunning
	bks.Status.Snapshots = []corev1alpha1.SnapshotReference{{Name: snap.Name, Repository: "primary"}}
	if err := c.Status().Update(ctx, bks); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		done  int64
		human string // done as the Job writes it
		want  string // the line the plugin prints
	}{
		{done: 1 << 30, human: "1.0 GiB", want: "progress primary: 1.0 GiB of 4.0 GiB (estimate) (25%), 64 MiB/s"},
		{done: 2 << 30, human: "2.0 GiB", want: "progress primary: 2.0 GiB of 4.0 GiB (estimate) (50%), 64 MiB/s"},
		// The estimate was short: the share stops at 99% until the end.
		{done: 5 << 30, human: "5.0 GiB", want: "progress primary: 5.0 GiB of 4.0 GiB (estimate) (99%), 64 MiB/s"},
	} {
		p := &storagev1alpha1.TransferProgress{BytesDone: step.done, Done: step.human, BytesPerSecond: 64 << 20,
			Rate: "64 MiB/s", TotalBytes: 4 << 30, TotalEstimated: true, Total: "4.0 GiB (estimate)",
			UpdateTime: &metav1.Time{Time: time.Now()}}
		snap.Status.Phase = storagev1alpha1.SnapshotRunning
		snap.Status.Components = map[string]storagev1alpha1.ComponentStatus{"dump": {Phase: storagev1alpha1.ComponentRunning, Progress: p}}
		snap.Status.Progress = p
		if err := c.Status().Update(ctx, snap); err != nil {
			t.Fatal(err)
		}
		waitOutput(ctx, t, &out, step.want)
		if step.done == 2<<30 { // the Job reports restic retrying the storage, then the storage answering
			retrying := "restic has been retrying requests to the storage of repository primary since 2026-01-02T03:04:05Z: connection refused"
			meta.SetStatusCondition(&snap.Status.Conditions, metav1.Condition{Type: storagev1alpha1.ConditionStorageUnreachable,
				Status: metav1.ConditionTrue, Reason: storagev1alpha1.ReasonStorageRetrying, Message: retrying})
			if err := c.Status().Update(ctx, snap); err != nil {
				t.Fatal(err)
			}
			waitOutput(ctx, t, &out, "primary: Running (dump Running) [StorageUnreachable: "+retrying+"]")
			meta.RemoveStatusCondition(&snap.Status.Conditions, storagev1alpha1.ConditionStorageUnreachable)
			if err := c.Status().Update(ctx, snap); err != nil {
				t.Fatal(err)
			}
		}
	}

	snap.Status.Phase, snap.Status.Size = storagev1alpha1.SnapshotSucceeded, "5.0 GiB"
	snap.Status.Components = map[string]storagev1alpha1.ComponentStatus{"dump": {Phase: storagev1alpha1.ComponentSucceeded, Size: "5.0 GiB"}}
	if err := c.Status().Update(ctx, snap); err != nil {
		t.Fatal(err)
	}
	bks.Status.Phase = corev1alpha1.BackupSessionSucceeded
	if err := c.Status().Update(ctx, bks); err != nil {
		t.Fatal(err)
	}
	if got := <-code; got != 0 {
		t.Fatalf("exit code %d; stderr %s\nstdout:\n%s", got, errOut.String(), out.String())
	}
	if n := strings.Count(out.String(), "progress primary: "); n != 3 {
		t.Fatalf("%d progress lines, want 3:\n%s", n, out.String())
	}
	t.Logf("kubectl keepsake backup db-backup --wait:\n%s", out.String())
}

// waitOutput waits until out holds want.
func waitOutput(ctx context.Context, t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		return strings.Contains(out.String(), want), nil
	})
	if err != nil {
		t.Fatalf("the plugin did not print %q:\n%s", want, out.String())
	}
}

// startedSession waits for the BackupSession the plugin creates.
func startedSession(ctx context.Context, t *testing.T, c client.Client) *corev1alpha1.BackupSession {
	t.Helper()
	var list corev1alpha1.BackupSessionList
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		return c.List(ctx, &list, client.InNamespace("default")) == nil && len(list.Items) == 1, nil
	})
	if err != nil {
		t.Fatalf("no BackupSession was created: %v", err)
	}
	return &list.Items[0]
}

// progressConfig is a BackupConfiguration with one session.
func progressConfig() *corev1alpha1.BackupConfiguration {
	return &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-backup"},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "db"},
			Backends: []corev1alpha1.BackendReference{{Name: "main", StorageRef: storagev1alpha1.ObjectReference{Name: "s3"}}},
			Sessions: []corev1alpha1.Session{{
				Name: "hourly",
				Scheduler: corev1alpha1.SchedulerSpec{Schedule: "0 * * * *", ConcurrencyPolicy: "Forbid",
					StartingDeadlineSeconds: ptr.To[int64](60)},
				Addon: corev1alpha1.AddonInfo{Name: "hyperbytedb", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup"}}},
				Repositories: []corev1alpha1.RepositoryInfo{{Name: "primary", Backend: "main", Directory: "primary",
					EncryptionSecret: storagev1alpha1.ObjectReference{Name: "pw"}}},
			}},
		},
	}
}
