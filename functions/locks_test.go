package functions

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

func TestDeadLock(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := map[string]struct {
		// age is how long ago the lock was taken or refreshed.
		age time.Duration
		// pod is what the API says about the lock's host.
		pod podState
		// dead is whether Keepsake may remove the lock.
		dead bool
	}{
		"pod ended":                       {age: time.Minute, pod: podState{found: true, ended: true}, dead: true},
		"pod running":                     {age: time.Minute, pod: podState{found: true}},
		"pod running, lock old":           {age: time.Hour, pod: podState{found: true}},
		"no such pod, lock fresh":         {age: restic.LockRefreshInterval},
		"no such pod, lock refreshed":     {age: deadLockAge},
		"no such pod, lock not refreshed": {age: deadLockAge + time.Second, dead: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := restic.Lock{Hostname: "restore-abcde", Time: now.Add(-tc.age)}
			dead, why := deadLock(l, tc.pod, now)
			if dead != tc.dead {
				t.Fatalf("dead = %v (%s), want %v", dead, why, tc.dead)
			}
			if dead && !strings.Contains(why, "restore-abcde") {
				t.Fatalf("reason %q does not name the pod", why)
			}
		})
	}
}

// lockAs starts restic as host hostname (in a UTS namespace of its own)
// running a backup of stdin that waits for input, so that it holds a lock
// in the repository, and returns once the lock exists. kill ends it with
// SIGKILL, leaving the lock behind as a killed pod would.
func lockAs(t *testing.T, repo *restic.Repo, spec RepositorySpec, hostname string) (kill func()) {
	t.Helper()
	before, err := repo.Locks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := spec.resticConfig(servers.Bin(t, "restic"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	script := `hostname "$1" && shift && exec "$@"`
	args := append([]string{"--uts", "sh", "-c", script, "sh", hostname, rc.Binary, "backup", "--stdin", "--quiet",
		"--repo", rc.Repository, "--password-file", rc.PasswordFile, "--cache-dir", rc.CacheDir}, rc.ExtraArgs...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), rc.Env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("unshare: %v (needs root for a UTS namespace)", err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = stdin.Close()
		})
	}
	t.Cleanup(kill)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		locks, err := repo.Locks(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(locks) > len(before) {
			return kill
		}
		if cmd.ProcessState != nil || strings.Contains(stderr.String(), "unshare failed") {
			t.Skipf("unshare: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restic as %s took no lock: %s", hostname, stderr.String())
	return nil
}

// lockHolders are the hostnames of repo's locks, sorted.
func lockHolders(t *testing.T, repo *restic.Repo) []string {
	t.Helper()
	locks, err := repo.LockInfos(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, l := range locks {
		hosts = append(hosts, l.Hostname)
	}
	slices.Sort(hosts)
	return hosts
}

// recordedWaits is a LockWaitReporter that keeps what it is told.
type recordedWaits struct{ waits []LockWait }

func (r *recordedWaits) LockWait(_ context.Context, w LockWait) { r.waits = append(r.waits, w) }

// TestLockKeeperRemovesTheLocksOfEndedPods runs real restic processes as
// pods (UTS namespaces named like pods) against a local repository and
// asks a kube-apiserver about them: the lock of a pod that has ended is
// removed, so is an unrefreshed lock of a pod that no longer exists, while
// the lock of a running pod is kept, and the run is told it waits for it.
func TestLockKeeperRemovesTheLocksOfEndedPods(t *testing.T) {
	c, _ := startKube(t)
	dir := t.TempDir()
	spec := RepositorySpec{Name: "primary", Restic: filepath.Join(dir, "repo"), PasswordFile: filepath.Join(dir, "pw")}
	if err := os.WriteFile(spec.PasswordFile, []byte("pw"), 0o400); err != nil {
		t.Fatal(err)
	}
	rc, err := spec.resticConfig(servers.Bin(t, "restic"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo := restic.New(rc)
	if err := repo.InitIfAbsent(context.Background()); err != nil {
		t.Fatal(err)
	}
	createPod(t, c, "restore-ended-abcde", corev1.PodFailed)
	createPod(t, c, "backup-running-fghij", corev1.PodRunning)
	lockAs(t, repo, spec, "restore-ended-abcde")()
	lockAs(t, repo, spec, "forget-deleted-klmno")()
	lockAs(t, repo, spec, "backup-running-fghij")

	var log bytes.Buffer
	waits := &recordedWaits{}
	keeper := &LockKeeper{Pods: c, Namespace: "default", Reporter: waits, Log: &log}
	keeper.Prepare(context.Background(), repo, spec, true, LockWait{SnapshotIDs: []string{"abc"}})
	if got, want := lockHolders(t, repo), []string{"backup-running-fghij", "forget-deleted-klmno"}; !slices.Equal(got, want) {
		t.Fatalf("locks after the first pass: %v, want %v (the ended pod's removed)\nlog:\n%s", got, want, log.String())
	}
	if len(waits.waits) != 1 || !strings.HasPrefix(waits.waits[0].Message, "waiting for the repository lock held by ") {
		t.Fatalf("waits reported: %+v, want one naming a holder", waits.waits)
	}

	// Later, the lock of the pod that is gone has not been refreshed: it is
	// dead too. The running pod's is kept, and the run waits for it.
	keeper.Now = func() time.Time { return time.Now().Add(deadLockAge + time.Minute) }
	waits.waits = nil
	keeper.Prepare(context.Background(), repo, spec, true, LockWait{})
	if got, want := lockHolders(t, repo), []string{"backup-running-fghij"}; !slices.Equal(got, want) {
		t.Fatalf("locks after the second pass: %v, want %v\nlog:\n%s", got, want, log.String())
	}
	w := waits.waits
	if len(w) != 1 || w[0].Holder != "backup-running-fghij" || w[0].Repository != "primary" ||
		!strings.HasPrefix(w[0].Message, "waiting for the repository lock held by backup-running-fghij since ") {
		t.Fatalf("waits reported: %+v, want one for backup-running-fghij", w)
	}
	// A backup takes a shared lock: the running pod's shared lock is no
	// reason to wait.
	waits.waits = nil
	keeper.Prepare(context.Background(), repo, spec, false, LockWait{})
	if len(waits.waits) != 0 {
		t.Fatalf("a shared run reported %+v, want no wait", waits.waits)
	}
}

func createPod(t *testing.T, c client.Client, name string, phase corev1.PodPhase) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "keepsake"}}},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = phase
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

// TestForgetWaitShowsOnTheSnapshot checks the forget run's report of a
// wait: the Snapshot holding the restic snapshot being forgotten gets
// condition WaitingForLock naming the holder, the rest of its status
// stays, and another Snapshot of the repository is left alone.
func TestForgetWaitShowsOnTheSnapshot(t *testing.T) {
	c, _ := startKube(t)
	succeededSnapshot(t, c, "doomed", "primary", false, "0123456789abcdef")
	succeededSnapshot(t, c, "other", "primary", false, "fedcba9876543210")
	cleaner := NewSnapshotCleaner(c, "default")
	msg := "waiting for the repository lock held by restore-abcde since 2026-01-02T03:04:05Z (for at most 10m0s)"
	cleaner.LockWait(context.Background(), LockWait{Repository: "primary", SnapshotIDs: []string{"01234567"}, Message: msg})

	snap := getSnapshot(t, c, "doomed")
	cond := meta.FindStatusCondition(snap.Status.Conditions, storagev1alpha1.ConditionWaitingForLock)
	if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != storagev1alpha1.ReasonRepositoryLocked || cond.Message != msg {
		t.Fatalf("doomed's WaitingForLock: %+v, want True, RepositoryLocked, %q", cond, msg)
	}
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || snap.Status.Components["dump"].ResticSnapshotID != "0123456789abcdef" {
		t.Fatalf("doomed's status changed beyond the condition: %+v", snap.Status)
	}
	if other := getSnapshot(t, c, "other"); meta.FindStatusCondition(other.Status.Conditions, storagev1alpha1.ConditionWaitingForLock) != nil {
		t.Fatalf("the other Snapshot got WaitingForLock: %+v", other.Status.Conditions)
	}
}

// TestLockKeeperRemovesLocksInS3 removes the lock of an ended pod from a
// repository on MinIO, through the storage settings a Job gets (the lock
// file is deleted with the storage's own client: restic cannot remove one
// given lock), and keeps a running pod's.
func TestLockKeeperRemovesLocksInS3(t *testing.T) {
	c, _ := startKube(t)
	s := newStorageStand(t)
	spec := s.repo(t, "locked")
	repo := s.resticRepo(t, spec)
	if err := repo.InitIfAbsent(context.Background()); err != nil {
		t.Fatal(err)
	}
	createPod(t, c, "restore-s3-abcde", corev1.PodSucceeded)
	createPod(t, c, "backup-s3-fghij", corev1.PodRunning)
	lockAs(t, repo, spec, "restore-s3-abcde")()
	lockAs(t, repo, spec, "backup-s3-fghij")

	var log bytes.Buffer
	keeper := &LockKeeper{Pods: c, Namespace: "default", Log: &log}
	keeper.Prepare(context.Background(), repo, spec, true, LockWait{})
	if got, want := lockHolders(t, repo), []string{"backup-s3-fghij"}; !slices.Equal(got, want) {
		t.Fatalf("locks: %v, want %v\nlog:\n%s", got, want, log.String())
	}
	if !strings.Contains(log.String(), "removed the lock of restore-s3-abcde: its pod restore-s3-abcde has ended") {
		t.Fatalf("log does not say which lock was removed and why:\n%s", log.String())
	}
}

// TestBackupWaitShowsOnItsSnapshot checks the backup's report of a wait:
// the session's Snapshot of the repository gets WaitingForLock, and the
// component's result, once in, removes it.
func TestBackupWaitShowsOnItsSnapshot(t *testing.T) {
	c, _ := startKube(t)
	createSnapshot(t, c, "waiting", "bks-1", "primary")
	rep := NewSnapshotReporter(c, "default", "bks-1")
	msg := "waiting for the repository lock held by prune-abcde since 2026-01-02T03:04:05Z (for at most 10m0s)"
	rep.LockWait(context.Background(), LockWait{Repository: "primary", Component: "dump", Message: msg})
	cond := meta.FindStatusCondition(getSnapshot(t, c, "waiting").Status.Conditions, storagev1alpha1.ConditionWaitingForLock)
	if cond == nil || cond.Status != metav1.ConditionTrue || cond.Message != msg {
		t.Fatalf("WaitingForLock after the wait: %+v, want True saying %q", cond, msg)
	}
	res := ComponentResult{Operation: "backup", Repository: "primary", Component: "dump", Phase: PhaseSucceeded, SnapshotID: "abc", Size: 10}
	if err := rep.Component(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	snap := getSnapshot(t, c, "waiting")
	if meta.FindStatusCondition(snap.Status.Conditions, storagev1alpha1.ConditionWaitingForLock) != nil || snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Fatalf("after the result: phase %s, conditions %+v; want Succeeded without WaitingForLock", snap.Status.Phase, snap.Status.Conditions)
	}
}

// TestRestoreWaitShowsInItsComponent checks the restore's report of a
// wait: the component's progress says whose lock it waits for.
func TestRestoreWaitShowsInItsComponent(t *testing.T) {
	c, _ := startKube(t)
	rs := createRestoreSession(t, c, "restore-waits", "primary")
	msg := "waiting for the repository lock held by prune-abcde since 2026-01-02T03:04:05Z (for at most 10m0s)"
	NewRestoreSessionReporter(c, "default", rs.Name).LockWait(context.Background(), LockWait{Repository: "primary", Component: "dump", Message: msg})
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(rs), rs); err != nil {
		t.Fatal(err)
	}
	if got := rs.Status.Components["dump"]; got.Progress != msg || got.Phase != storagev1alpha1.ComponentPending {
		t.Fatalf("component after the wait: %+v, want Pending saying %q", got, msg)
	}
}
