package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/cluster"
	"github.com/keepsake-dev/keepsake/test/demo"
)

// TestOperator installs Keepsake with its Helm chart on the local cluster
// and drives it only with YAML and kubectl-equivalent reads, as a user
// would, in two layouts that run side by side.
func TestOperator(t *testing.T) {
	c := cluster.Ensure(t)
	ns := c.Namespace(t, "e2e-keepsake", "restricted")
	e := demo.Setup(t, c, ns)
	// The layouts run side by side, each in namespaces of its own: one
	// namespace as the demo has it, several namespaces sharing a storage as
	// platform teams have them, faults injected, the first hour's
	// mistakes, the metrics a real Prometheus scrapes, the PostgreSQL and
	// script addons, a storage that fails, the author guide's addon, and
	// physical backups with offline restores (docs/testing.md). Then no
	// Secret may show anywhere it was not put. The namespaces live until
	// the test ends, for that last look.
	several := teams{
		storage: c.Namespace(t, "e2e-storage", "restricted"),
		a:       c.Namespace(t, "e2e-team-a", "restricted"),
		b:       c.Namespace(t, "e2e-team-b", "restricted"),
	}
	faultsNS := c.Namespace(t, "e2e-faults", "restricted")
	firstHourNS := c.Namespace(t, "e2e-first-hour", "restricted")
	platformNS := c.Namespace(t, "e2e-platform", "restricted")
	storageFaultsNS := c.Namespace(t, "e2e-storage-faults", "restricted")
	guideNS := c.Namespace(t, "e2e-guide", "restricted")
	physicalNS := c.Namespace(t, "e2e-physical", "restricted")
	t.Run("layouts", func(t *testing.T) {
		// Goroutines rather than t.Parallel, which go test bounds by
		// -parallel (the number of cores: two here).
		var wg sync.WaitGroup
		for name, layout := range map[string]func(*testing.T){
			"one namespace":      func(t *testing.T) { oneNamespace(t, e) },
			"several namespaces": func(t *testing.T) { severalNamespaces(t, e, several) },
			"faults":             func(t *testing.T) { faults(t, e.InNamespace(t, faultsNS)) },
			"first hour":         func(t *testing.T) { firstHour(t, e.InNamespace(t, firstHourNS)) },
			"metrics":            func(t *testing.T) { metricsLayout(t, c, e) },
			"platform":           func(t *testing.T) { platform(t, e.InNamespace(t, platformNS)) },
			"storage faults":     func(t *testing.T) { storageFaults(t, e.InNamespace(t, storageFaultsNS)) },
			"guide":              func(t *testing.T) { guideLayout(t, e.InNamespace(t, guideNS)) },
			"physical":           func(t *testing.T) { physical(t, c, e.InNamespace(t, physicalNS)) },
		} {
			wg.Go(func() { t.Run(name, layout) })
		}
		wg.Wait()
	})
	t.Run("no secret leaked", func(t *testing.T) {
		noSecretLeaked(t, c, e, []string{ns, several.storage, several.a, several.b, faultsNS, firstHourNS, platformNS, storageFaultsNS, guideNS, physicalNS})
	})
}

// oneNamespace is the demo's layout: storage validation, scheduled backups
// checked in restic, a restore of every point, a failing dump, retention,
// an operator killed mid-backup and the kubectl plugin, in order.
func oneNamespace(t *testing.T, e *demo.Env) {
	e = e.With(t)
	ds := hyperbytedbtest.Mixed(time.Now())
	ds.Write(t, e.DB)
	want := hyperbytedbtest.ReadContents(t, e.DB)

	t.Run("storage validation", func(t *testing.T) { storageValidation(t, e) })
	// Every minute, keeping the last two snapshots.
	e.Apply(demo.BackupConfiguration, func(p *demo.Params) {
		p.Name, p.Schedule, p.AuthSecret, p.Directory, p.Retention = "minutely", "* * * * *", "metrics-auth", "minutely", "keep-two"
	})
	var first *corev1alpha1.BackupSession
	t.Run("scheduled backups", func(t *testing.T) { first = scheduledBackups(t, e) })
	if first == nil {
		t.FailNow()
	}
	t.Run("restore every point", func(t *testing.T) { restoreEveryPoint(t, e, first, want) })
	t.Run("dump failure", func(t *testing.T) { dumpFailure(t, e) })
	t.Run("retention", func(t *testing.T) { retention(t, e) })
	t.Run("operator killed mid-backup", func(t *testing.T) { operatorKilled(t, e) })
	t.Run("kubectl plugin", func(t *testing.T) { kubectlPlugin(t, e) })
}

// storageValidation: the BackupStorage on MinIO is Ready (Setup waited);
// a wrong bucket and a missing Secret give NotReady with their reasons.
func storageValidation(t *testing.T, e *demo.Env) {
	e = e.With(t)
	ctx := demo.Context(t, time.Minute)
	bad := []struct{ name, bucket, secret, reason string }{
		{"wrong-bucket", "no-such-bucket", "minio-credentials", storagev1alpha1.ReasonBucketNotFound},
		{"no-secret", e.Params.Bucket, "no-such-secret", storagev1alpha1.ReasonSecretMissing},
	}
	for _, b := range bad {
		manifest := fmt.Sprintf(`
apiVersion: storage.keepsake.dev/v1alpha1
kind: BackupStorage
metadata: {name: %s, namespace: %s}
spec:
  storage:
    provider: s3
    s3: {endpoint: %q, bucket: %s, prefix: x, region: us-east-1, forcePathStyle: true, secretName: %s}
`, b.name, e.Params.Namespace, e.Params.Endpoint, b.bucket, b.secret)
		if err := e.Stand.Apply(ctx, manifest, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bad {
		bs := e.WaitStorage(b.name, b.reason)
		if bs.Status.Phase == storagev1alpha1.BackupStorageReady {
			t.Errorf("BackupStorage %s is %s with reason %s", b.name, bs.Status.Phase, b.reason)
		}
	}
}

// scheduledBackups: the first BackupSession runs at once and a scheduled
// one follows; both succeed, their Snapshots carry sizes and restic IDs,
// and restic, reading the bucket from the node, holds those snapshots.
func scheduledBackups(t *testing.T, e *demo.Env) *corev1alpha1.BackupSession {
	e = e.With(t)
	first := e.WaitBackupSession(backupconfiguration.FirstSessionName("minutely", "scheduled"), corev1alpha1.BackupSessionSucceeded)
	scheduled := waitScheduledSuccesses(t, e, "minutely", 1)
	ids := map[string]bool{}
	for _, bks := range []*corev1alpha1.BackupSession{first, &scheduled[0]} {
		if len(bks.Status.Snapshots) != 1 {
			t.Fatalf("BackupSession %s lists %d Snapshots", bks.Name, len(bks.Status.Snapshots))
		}
		var snap storagev1alpha1.Snapshot
		key := client.ObjectKey{Namespace: e.Params.Namespace, Name: bks.Status.Snapshots[0].Name}
		if err := e.Kube.Get(demo.Context(t, time.Minute), key, &snap); err != nil {
			t.Fatal(err)
		}
		comp, ok := snap.Status.Components["logical-backup"]
		if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || !ok || comp.ResticSnapshotID == "" ||
			snap.Status.SizeBytes <= 0 || snap.Status.Size == "" {
			t.Fatalf("Snapshot %s status = %+v, want Succeeded with a size and a restic ID", snap.Name, snap.Status)
		}
		ids[comp.ResticSnapshotID] = true
	}
	stored := resticIDs(t, e.Restic("minutely"))
	for id := range ids {
		if !containsID(stored, id) {
			t.Errorf("restic snapshot %s of a Succeeded Snapshot is not in the repository (it holds %v)", id, stored)
		}
	}
	return first
}

// waitScheduledSuccesses waits until at least n BackupSessions that the
// CronJob created (not the first) have Succeeded, and returns them, oldest
// first.
func waitScheduledSuccesses(t *testing.T, e *demo.Env, config string, n int) []corev1alpha1.BackupSession {
	t.Helper()
	var done []corev1alpha1.BackupSession
	err := demo.Poll(demo.Context(t, demo.Timeout), fmt.Sprintf("%d scheduled BackupSessions Succeeded", n),
		func(ctx context.Context) (bool, string, error) {
			var list corev1alpha1.BackupSessionList
			if err := e.Kube.List(ctx, &list, client.InNamespace(e.Params.Namespace),
				client.MatchingLabels{corev1alpha1.LabelBackupConfiguration: config}); err != nil {
				return false, "", err
			}
			done = done[:0]
			var phases []string
			for _, b := range list.Items {
				phases = append(phases, b.Name+"="+string(b.Status.Phase))
				if b.Name == backupconfiguration.FirstSessionName(config, "scheduled") {
					continue
				}
				if b.Status.Phase == corev1alpha1.BackupSessionFailed {
					return false, "", fmt.Errorf("BackupSession %s Failed: %s", b.Name, failure(b.Status.Conditions))
				}
				if b.Status.Phase == corev1alpha1.BackupSessionSucceeded {
					done = append(done, b)
				}
			}
			return len(done) >= n, strings.Join(phases, ", "), nil
		})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(done, func(i, j int) bool { return done[i].CreationTimestamp.Before(&done[j].CreationTimestamp) })
	return done
}

func failure(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, corev1alpha1.ConditionBackupSucceeded); c != nil {
		return c.Reason + ": " + c.Message
	}
	return "no BackupSucceeded condition"
}

// resticIDs lists the repository's snapshot IDs; none when restic finds
// no repository there.
func resticIDs(t *testing.T, repo *restic.Repo) []string {
	t.Helper()
	snaps, err := repo.Snapshots(demo.Context(t, 2*time.Minute))
	if errors.Is(err, restic.ErrRepositoryMissing) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(snaps))
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	return ids
}

// restoreEveryPoint: the database is wiped, and a RestoreSession against
// the first Snapshot brings back every point exactly.
func restoreEveryPoint(t *testing.T, e *demo.Env, first *corev1alpha1.BackupSession, want hyperbytedbtest.Contents) {
	e = e.With(t)
	e.DropAll()
	e.Apply(demo.RestoreSession, func(p *demo.Params) {
		p.Name, p.Repository, p.Snapshot = "restore-first", "minutely-repo", first.Status.Snapshots[0].Name
	})
	rs := e.WaitRestoreSession("restore-first", corev1alpha1.RestoreSucceeded)
	if rs.Status.Snapshot != first.Status.Snapshots[0].Name {
		t.Errorf("RestoreSession restored %q, want %q", rs.Status.Snapshot, first.Status.Snapshots[0].Name)
	}
	got := hyperbytedbtest.ReadContents(t, e.DB)
	if diff := hyperbytedbtest.Diff(want, got, 10); diff != "" {
		t.Fatalf("restored database differs:\n%s", diff)
	}
}

// dumpFailure: a backup with the wrong database password fails with a
// reason a user can read, and leaves no restic snapshot.
func dumpFailure(t *testing.T, e *demo.Env) {
	e = e.With(t)
	ctx := demo.Context(t, time.Minute)
	wrong := fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: wrong-auth, namespace: %s}
stringData: {username: admin, password: not-the-password}
`, e.Params.Namespace)
	if err := e.Stand.Apply(ctx, wrong, nil); err != nil {
		t.Fatal(err)
	}
	e.Apply(demo.BackupConfiguration, func(p *demo.Params) {
		p.Name, p.Schedule, p.AuthSecret, p.Directory, p.Retention = "wrong-auth", "0 0 1 1 *", "wrong-auth", "wrong-auth", ""
	})
	bks := e.WaitBackupSession(backupconfiguration.FirstSessionName("wrong-auth", "scheduled"), corev1alpha1.BackupSessionFailed)
	c := meta.FindStatusCondition(bks.Status.Conditions, corev1alpha1.ConditionBackupSucceeded)
	if c == nil || c.Reason != corev1alpha1.ReasonBackupFailed || !strings.Contains(strings.ToLower(c.Message), "auth") {
		t.Errorf("BackupSucceeded condition = %+v, want BackupFailed saying authentication failed", c)
	} else {
		t.Logf("failure as the user sees it: %s", c.Message)
	}
	for _, s := range e.Snapshots("wrong-auth-repo") {
		if s.Status.Phase != storagev1alpha1.SnapshotFailed {
			t.Errorf("Snapshot %s is %s after a failed dump", s.Name, s.Status.Phase)
		}
	}
	if ids := resticIDs(t, e.Restic("wrong-auth")); len(ids) != 0 {
		t.Errorf("a failed dump left restic snapshots %v", ids)
	}
}

// retention: with successfulSnapshots.last 2, once three scheduled runs
// succeeded and retention ran, restic and the Snapshot objects hold exactly
// the two newest.
func retention(t *testing.T, e *demo.Env) {
	e = e.With(t)
	runs := waitScheduledSuccesses(t, e, "minutely", 2)
	newest := runs[len(runs)-1]
	// The newest run's retention Job is the last word.
	err := demo.Poll(demo.Context(t, demo.Timeout), "retention applied after "+newest.Name, func(ctx context.Context) (bool, string, error) {
		var bks corev1alpha1.BackupSession
		if err := e.Kube.Get(ctx, client.ObjectKeyFromObject(&newest), &bks); err != nil {
			return false, "", err
		}
		c := meta.FindStatusCondition(bks.Status.Conditions, corev1alpha1.ConditionRetentionApplied)
		if c != nil && c.Reason == corev1alpha1.ReasonRetentionFailed {
			return false, "", fmt.Errorf("retention failed: %s", c.Message)
		}
		return c != nil && c.Status == "True", fmt.Sprint(c), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Stop scheduling so nothing changes while the repository is read.
	if _, err := e.Kubectl(demo.Context(t, time.Minute), "patch", "backupconfiguration", "minutely", "-n", e.Params.Namespace,
		"--type=merge", "-p", `{"spec":{"paused":true}}`); err != nil {
		t.Fatal(err)
	}
	waitNoneRunning(t, e, "minutely")
	stored := resticIDs(t, e.Restic("minutely"))
	var kept []string
	for _, s := range e.Snapshots("minutely-repo") {
		if s.Status.Phase == storagev1alpha1.SnapshotSucceeded {
			kept = append(kept, s.Status.Components["logical-backup"].ResticSnapshotID)
		}
	}
	// A run that finished after the last retention may add one more.
	if len(stored) < 2 || len(stored) > 3 || len(kept) != len(stored) {
		t.Fatalf("restic holds %v and the Succeeded Snapshots name %v: want the same 2 (3 if a run ended after retention)", stored, kept)
	}
	for _, id := range kept {
		if !slices.Contains(stored, id) {
			t.Errorf("Snapshot with restic ID %s remains but restic forgot it (restic: %v)", id, stored)
		}
	}
}

// waitNoneRunning waits until no BackupSession of config is Running or
// Pending.
func waitNoneRunning(t *testing.T, e *demo.Env, config string) {
	t.Helper()
	err := demo.Poll(demo.Context(t, demo.Timeout), "no running BackupSession of "+config, func(ctx context.Context) (bool, string, error) {
		var list corev1alpha1.BackupSessionList
		if err := e.Kube.List(ctx, &list, client.InNamespace(e.Params.Namespace),
			client.MatchingLabels{corev1alpha1.LabelBackupConfiguration: config}); err != nil {
			return false, "", err
		}
		for _, b := range list.Items {
			if !b.IsFinished() {
				return false, b.Name + " is " + string(b.Status.Phase), nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// operatorKilled: the operator pod is deleted while a backup runs; the
// session still completes, once, with one Job.
func operatorKilled(t *testing.T, e *demo.Env) {
	e = e.With(t)
	// Enough points that the dump lasts while the operator restarts.
	bulk := hyperbytedbtest.Bulk{DB: "bulk", N: 300_000, Series: 100}
	bulk.Write(t, e.DB, 0, bulk.N)
	// A configuration of its own: its first session is the one to follow.
	e.Apply(demo.BackupConfiguration, func(p *demo.Params) {
		p.Name, p.Schedule, p.AuthSecret, p.Directory, p.Retention = "restart", "0 0 1 1 *", "metrics-auth", "restart", ""
	})
	session := backupconfiguration.FirstSessionName("restart", "scheduled")
	var job batchv1.Job
	err := demo.Poll(demo.Context(t, demo.Timeout), "the backup pod running", func(ctx context.Context) (bool, string, error) {
		err := e.Kube.Get(ctx, client.ObjectKey{Namespace: e.Params.Namespace, Name: session}, &job)
		if client.IgnoreNotFound(err) != nil {
			return false, "", err
		}
		if job.Status.Succeeded+job.Status.Failed > 0 {
			return false, "", fmt.Errorf("the backup Job ended before the operator could be killed mid-backup: %+v", job.Status)
		}
		return job.Status.Ready != nil && *job.Status.Ready > 0, fmt.Sprintf("Job status %+v", job.Status), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := e.OperatorPods(demo.Context(t, time.Minute))
	if err != nil || len(pods) != 1 {
		t.Fatalf("operator pods: %d, %v", len(pods), err)
	}
	t.Logf("deleting operator pod %s while Job %s has %d active, %d succeeded pods", pods[0].Name, job.Name, job.Status.Active, job.Status.Succeeded)
	if _, err := e.Kubectl(demo.Context(t, time.Minute), "delete", "pod", "-n", demo.OperatorNamespace, pods[0].Name, "--wait=false"); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitOperatorReady(demo.Context(t, demo.Timeout)); err != nil {
		t.Fatal(err)
	}
	bks := e.WaitBackupSession(session, corev1alpha1.BackupSessionSucceeded)
	var jobs batchv1.JobList
	if err := e.Kube.List(demo.Context(t, time.Minute), &jobs, client.InNamespace(e.Params.Namespace),
		client.MatchingLabels{corev1alpha1.LabelBackupSession: bks.Name}); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Errorf("BackupSession %s ran %d Jobs, want 1", bks.Name, len(jobs.Items))
	}
}
