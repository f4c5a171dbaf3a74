package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/demo"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// storageFaults fails the storage under Keepsake, in a namespace of its
// own, with a MinIO of its own that the test runs on the node: a proxy
// injecting 503s, resets and delays in front of it; the kubelet restarted
// while a backup runs; MinIO stopped while a backup, then a restore, runs.
// Each asserts what the user sees and that no backup that succeeded was
// lost (docs/testing.md has the fault matrix: rows 2, 3 and 7).
func storageFaults(t *testing.T, e *demo.Env) {
	s := newStorageLayout(t, e)
	hyperbytedbtest.Mixed(time.Now()).Write(t, e.DB)
	small := hyperbytedbtest.ReadContents(t, e.DB)
	t.Run("fault-injecting proxy", func(t *testing.T) { s.faultyProxy(t, small) })

	// Enough points that a backup and a restore last tens of seconds.
	bulk := hyperbytedbtest.Bulk{DB: "bulk", N: 300_000, Series: 100}
	bulk.Write(t, e.DB, 0, bulk.N)
	want := hyperbytedbtest.ReadContents(t, e.DB)
	t.Run("kubelet restarted during a backup", func(t *testing.T) { s.kubeletRestarted(t, want) })
	var snapshot string
	t.Run("MinIO stopped during a backup", func(t *testing.T) { snapshot = s.minioStoppedDuringBackup(t, want) })
	t.Run("MinIO stopped during a restore", func(t *testing.T) {
		if snapshot == "" {
			t.Fatal("no Snapshot to restore: the backup after the outage did not succeed")
		}
		s.minioStoppedDuringRestore(t, snapshot, want)
	})
}

// storageLayout is the layout's storage: MinIO on the node, reached by
// pods through Service minio-node (BackupStorage direct), and the fault
// proxy in front of it behind Service minio-proxied (BackupStorage
// proxied), each storage with a prefix of its own in one bucket.
type storageLayout struct {
	e      *demo.Env
	minio  *servers.MinIO
	proxy  *servers.FaultProxy
	bucket string
}

// proxyFaults fail one request in five, never more than two in a row.
var proxyFaults = servers.FaultProxyConfig{Share: 0.2, MaxInARow: 2, Delay: 10 * time.Second, Seed: 12}

func newStorageLayout(t *testing.T, e *demo.Env) *storageLayout {
	nodeIP := e.Stand.Cluster.NodeIP
	s := &storageLayout{e: e, bucket: "storage-faults"}
	s.minio = servers.StartMinIO(t, servers.ListenOn(nodeIP))
	s.minio.CreateBucket(t, s.bucket)
	s.proxy = servers.StartFaultProxy(t, nodeIP, s.minio.Endpoint, proxyFaults)
	// The operator's first checks of the proxied storage are not what the
	// proxy is for: faults go on once both storages are Ready.
	s.proxy.SetFaults(false)
	ns := e.Params.Namespace
	apply(t, e, nodeService, map[string]string{"Name": "minio-node", "NodeIP": nodeIP, "Port": port(t, s.minio.Endpoint)})
	apply(t, e, nodeService, map[string]string{"Name": "minio-proxied", "NodeIP": nodeIP, "Port": port(t, s.proxy.URL)})
	apply(t, e, nodeStorageSecret, map[string]string{"AccessKey": s.minio.AccessKey, "SecretKey": s.minio.SecretKey})
	for name, svc := range map[string]string{"direct": "minio-node", "proxied": "minio-proxied"} {
		apply(t, e, nodeStorage, map[string]string{"Name": name, "Endpoint": serviceEndpoint(svc, ns), "Bucket": s.bucket})
	}
	e.WaitStorage("direct", storagev1alpha1.ReasonStorageAvailable)
	e.WaitStorage("proxied", storagev1alpha1.ReasonStorageAvailable)
	t.Logf("MinIO on the node at %s, the fault proxy at %s", s.minio.Endpoint, s.proxy.URL)
	return s
}

// nodeService is a selector-less Service with an EndpointSlice naming a
// port on the node, where the test runs a server as a host process.
const nodeService = `
apiVersion: v1
kind: Service
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  ports:
    - {name: s3, port: 9000, targetPort: {{.Port}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {{.Name}}-node
  namespace: {{.Namespace}}
  labels: {kubernetes.io/service-name: {{.Name}}}
addressType: IPv4
ports:
  - {name: s3, port: {{.Port}}, protocol: TCP}
endpoints:
  - addresses: ["{{.NodeIP}}"]
    conditions: {ready: true}
`

const nodeStorageSecret = `
apiVersion: v1
kind: Secret
metadata: {name: node-minio-credentials, namespace: {{.Namespace}}}
stringData:
  AWS_ACCESS_KEY_ID: {{printf "%q" .AccessKey}}
  AWS_SECRET_ACCESS_KEY: {{printf "%q" .SecretKey}}
`

// nodeStorage is a BackupStorage on the node's MinIO (plain HTTP), its
// prefix named after it.
const nodeStorage = `
apiVersion: storage.keepsake.dev/v1alpha1
kind: BackupStorage
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  storage:
    provider: s3
    s3: {endpoint: "{{.Endpoint}}", bucket: {{.Bucket}}, prefix: {{.Name}}, region: us-east-1, forcePathStyle: true, secretName: node-minio-credentials}
`

// timedRestore restores Snapshot of Repository into the database within
// Timeout.
const timedRestore = `
apiVersion: core.keepsake.dev/v1alpha1
kind: RestoreSession
metadata: {name: {{.Name}}, namespace: {{.Namespace}}}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: metrics}
  dataSource:
    repository: {name: {{.Repository}}}
    snapshot: {{.Snapshot}}
  addon:
    name: hyperbytedb
    tasks:
      - name: logical-restore
        params: {authSecret: metrics-auth}
  restoreTimeout: {{.Timeout}}
`

func serviceEndpoint(service, ns string) string {
	return fmt.Sprintf("http://%s.%s.svc.cluster.local:9000", service, ns)
}

func port(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Port() == "" {
		t.Fatalf("no port in %q: %v", rawURL, err)
	}
	return u.Port()
}

// restic opens, from the node, the restic repository in directory dir of
// BackupStorage prefix, talking to MinIO directly.
func (s *storageLayout) restic(t *testing.T, prefix, dir string) *restic.Repo {
	t.Helper()
	target, err := storage.ResticRepository(storage.Config{
		Provider: storage.ProviderS3,
		S3: storage.S3Config{Endpoint: s.minio.Endpoint, Bucket: s.bucket, Prefix: prefix,
			Region: "us-east-1", ForcePathStyle: true},
		Credentials: storage.Credentials{AccessKeyID: s.minio.AccessKey, SecretAccessKey: s.minio.SecretKey},
	}, s.e.Params.Namespace, dir)
	if err != nil {
		t.Fatal(err)
	}
	password := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(password, []byte(s.e.Params.ResticPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	return restic.New(restic.Config{
		Binary: servers.Bin(t, "restic"), Repository: target.Repository, PasswordFile: password,
		Env: target.Env, ExtraArgs: target.ExtraArgs, CacheDir: filepath.Join(t.TempDir(), "cache"),
	})
}

// restore drops every database and restores snapshot of repo; every point
// comes back.
func (s *storageLayout) restore(t *testing.T, name, repo, snapshot string, want hyperbytedbtest.Contents) *corev1alpha1.RestoreSession {
	t.Helper()
	e := s.e.With(t)
	e.DropAll()
	apply(t, e, timedRestore, map[string]string{"Name": name, "Repository": repo, "Snapshot": snapshot, "Timeout": "10m"})
	rs := e.WaitRestoreSession(name, corev1alpha1.RestoreSucceeded)
	if diff := hyperbytedbtest.Diff(want, hyperbytedbtest.ReadContents(t, e.DB), 10); diff != "" {
		t.Fatalf("RestoreSession %s of Snapshot %s: restored database differs:\n%s", name, snapshot, diff)
	}
	return rs
}

// snapshotOf returns the one Snapshot a finished BackupSession made.
func snapshotOf(t *testing.T, e *demo.Env, bks *corev1alpha1.BackupSession) *storagev1alpha1.Snapshot {
	t.Helper()
	if len(bks.Status.Snapshots) != 1 {
		t.Fatalf("BackupSession %s lists %d Snapshots, want 1", bks.Name, len(bks.Status.Snapshots))
	}
	var snap storagev1alpha1.Snapshot
	key := client.ObjectKey{Namespace: e.Params.Namespace, Name: bks.Status.Snapshots[0].Name}
	if err := e.Kube.Get(demo.Context(t, time.Minute), key, &snap); err != nil {
		t.Fatal(err)
	}
	return &snap
}

// faultyProxy: backups through the proxy, with faults on, until at least
// three ran and the proxy injected faults of each kind. Each ends
// Succeeded, or Failed with a reason and no Succeeded Snapshot; at least
// one succeeds. Every Succeeded Snapshot restores every point with the
// storage pointed at MinIO directly, and one restores through the proxy,
// faults on.
func (s *storageLayout) faultyProxy(t *testing.T, want hyperbytedbtest.Contents) {
	e := s.e.With(t)
	s.proxy.SetFaults(true)
	apply(t, e, oneShot, map[string]string{"Name": "proxied", "Storage": "proxied", "Secret": "restic-password"})
	var succeeded []string
	for i := 1; i <= 3 || (!injectedEveryKind(s.proxy.Injected()) && i <= 6); i++ {
		name := backupconfiguration.FirstSessionName("proxied", "manual")
		if i > 1 {
			name = fmt.Sprintf("proxied-%d", i)
			apply(t, e, backupSession, map[string]string{"Name": name, "Config": "proxied"})
		}
		if snap := s.endedCleanly(t, name); snap != "" {
			succeeded = append(succeeded, snap)
		}
	}
	injected := s.proxy.Injected()
	t.Logf("faults injected during the backups: %v; requests forwarded: %d", injected, s.proxy.Forwarded())
	for _, f := range servers.Faults {
		if injected[f] == 0 {
			t.Errorf("the proxy injected no %s fault during the backups (injected %v)", f, injected)
		}
	}
	if len(succeeded) == 0 {
		t.Fatal("no backup through the fault proxy succeeded")
	}

	s.repoint(t, "proxied", serviceEndpoint("minio-node", e.Params.Namespace))
	for i, snap := range succeeded {
		s.restore(t, fmt.Sprintf("proxied-clean-%d", i+1), "proxied-repo", snap, want)
	}
	s.repoint(t, "proxied", serviceEndpoint("minio-proxied", e.Params.Namespace))
	s.proxy.SetFaults(true)
	before := s.proxy.Injected()
	rs := s.restore(t, "proxied-faulty", "proxied-repo", succeeded[len(succeeded)-1], want)
	logTimeToFinal(t, rs.CreationTimestamp.Time, rs.Status.Conditions)
	t.Logf("faults injected during the restore through the proxy: %v (before it: %v)", s.proxy.Injected(), before)
}

func injectedEveryKind(injected map[servers.Fault]int) bool {
	for _, f := range servers.Faults {
		if injected[f] == 0 {
			return false
		}
	}
	return true
}

// endedCleanly waits until BackupSession name ends and checks it ended
// cleanly: Succeeded with a Succeeded Snapshot (whose name it returns), or
// Failed with a reason and no Succeeded Snapshot.
func (s *storageLayout) endedCleanly(t *testing.T, name string) string {
	t.Helper()
	e := s.e.With(t)
	var bks corev1alpha1.BackupSession
	waitObject(t, e, e.Params.Namespace, name, &bks, func(b *corev1alpha1.BackupSession) (bool, string) {
		return b.IsFinished(), string(b.Status.Phase)
	})
	logTimeToFinal(t, bks.CreationTimestamp.Time, bks.Status.Conditions)
	switch bks.Status.Phase {
	case corev1alpha1.BackupSessionSucceeded:
		snap := snapshotOf(t, e, &bks)
		if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
			t.Errorf("BackupSession %s Succeeded but its Snapshot %s is %s", name, snap.Name, snap.Status.Phase)
			return ""
		}
		t.Logf("BackupSession %s Succeeded", name)
		return snap.Name
	case corev1alpha1.BackupSessionFailed:
		c := meta.FindStatusCondition(bks.Status.Conditions, corev1alpha1.ConditionBackupSucceeded)
		if c == nil || c.Reason == "" || c.Message == "" {
			t.Errorf("BackupSession %s Failed with BackupSucceeded condition %+v, want a reason and a message", name, c)
		} else {
			t.Logf("BackupSession %s Failed, as the user sees it: %s: %s", name, c.Reason, c.Message)
		}
		for _, ref := range bks.Status.Snapshots {
			var snap storagev1alpha1.Snapshot
			if err := e.Kube.Get(demo.Context(t, time.Minute), client.ObjectKey{Namespace: e.Params.Namespace, Name: ref.Name}, &snap); err == nil &&
				snap.Status.Phase == storagev1alpha1.SnapshotSucceeded {
				t.Errorf("BackupSession %s Failed but its Snapshot %s is Succeeded", name, snap.Name)
			}
		}
	default:
		t.Errorf("BackupSession %s ended %s: %s", name, bks.Status.Phase, failure(bks.Status.Conditions))
	}
	return ""
}

// repoint sets BackupStorage name's endpoint, as a storage administrator
// moving it does, and waits until the operator checked it there. The proxy
// injects no faults meanwhile: the check is not what it is for.
func (s *storageLayout) repoint(t *testing.T, name, endpoint string) {
	t.Helper()
	e := s.e.With(t)
	s.proxy.SetFaults(false)
	patch := fmt.Sprintf(`{"spec":{"storage":{"s3":{"endpoint":%q}}}}`, endpoint)
	if _, err := e.Kubectl(demo.Context(t, time.Minute), "patch", "backupstorage", name, "-n", e.Params.Namespace, "--type=merge", "-p", patch); err != nil {
		t.Fatal(err)
	}
	waitObject(t, e, e.Params.Namespace, name, &storagev1alpha1.BackupStorage{}, func(bs *storagev1alpha1.BackupStorage) (bool, string) {
		c := meta.FindStatusCondition(bs.Status.Conditions, storagev1alpha1.ConditionReady)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.ObservedGeneration == bs.Generation && c.Reason == storagev1alpha1.ReasonStorageAvailable,
			fmt.Sprintf("generation %d, Ready of generation %d: %s: %s", bs.Generation, c.ObservedGeneration, c.Reason, c.Message)
	})
}

// kubeletRestarted: the kubelet is restarted while a backup pod runs. The
// BackupSession ends Succeeded, with one Job that ran one pod, and its
// Snapshot restores every point.
func (s *storageLayout) kubeletRestarted(t *testing.T, want hyperbytedbtest.Contents) {
	e := s.e.With(t)
	apply(t, e, oneShot, map[string]string{"Name": "kubelet", "Storage": "direct", "Secret": "restic-password"})
	session := backupconfiguration.FirstSessionName("kubelet", "manual")
	pod := waitBackupPodRunning(t, e, session)
	t.Logf("restarting the kubelet while backup pod %s runs", pod)
	restart := time.Now()
	if err := e.Stand.Cluster.RestartKubelet(demo.Context(t, 5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var running corev1.Pod
	if err := e.Kube.Get(demo.Context(t, time.Minute), client.ObjectKey{Namespace: e.Params.Namespace, Name: pod}, &running); err != nil {
		t.Fatal(err)
	}
	t.Logf("the restarted kubelet reported the node Ready after %s; the backup pod is %s", time.Since(restart).Round(100*time.Millisecond), running.Status.Phase)
	bks := e.WaitBackupSession(session, corev1alpha1.BackupSessionSucceeded)
	logTimeToFinal(t, bks.CreationTimestamp.Time, bks.Status.Conditions)
	jobs := sessionJobs(t, e, session)
	if len(jobs) != 1 {
		t.Fatalf("BackupSession %s made %d Jobs, want 1", session, len(jobs))
	}
	var pods corev1.PodList
	if err := e.Kube.List(demo.Context(t, time.Minute), &pods, client.InNamespace(e.Params.Namespace), client.MatchingLabels{"job-name": jobs[0].Name}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Errorf("Job %s ran %d pods across the kubelet restart, want 1", jobs[0].Name, len(pods.Items))
	}
	s.restore(t, "after-kubelet-restart", "kubelet-repo", snapshotOf(t, e, bks).Name, want)
}

// minioStoppedDuringBackup: after a first backup into the repository,
// MinIO is stopped once the next backup's pod runs: not later, for a
// backup of the whole bulk lasts about ten seconds and, in the second run,
// was done uploading by the time its Snapshot first showed progress (35
// MiB read, Succeeded a second later). The BackupSession fails within its
// 2 minute deadline with reason StorageUnreachable and a message naming
// the storage, its Snapshot showed StorageUnreachable while restic retried
// and is not Succeeded, and restic holds no snapshot of the run once MinIO
// is back. The next backup succeeds and restores every point; it returns
// that Snapshot.
func (s *storageLayout) minioStoppedDuringBackup(t *testing.T, want hyperbytedbtest.Contents) string {
	e := s.e.With(t)
	apply(t, e, oneShot, map[string]string{"Name": "outage", "Storage": "direct", "Secret": "restic-password", "Timeout": "2m"})
	e.WaitBackupSession(backupconfiguration.FirstSessionName("outage", "manual"), corev1alpha1.BackupSessionSucceeded)
	before := resticIDs(t, s.restic(t, "direct", "outage"))
	apply(t, e, backupSession, map[string]string{"Name": "outage-down", "Config": "outage"})
	pod := waitBackupPodRunning(t, e, "outage-down")
	stopped, back := s.stopMinIO(t)
	snap := snapshotOf(t, e, e.WaitBackupSession("outage-down", corev1alpha1.BackupSessionRunning))
	t.Logf("stopped MinIO while backup pod %s runs (Snapshot %s progress: %+v)", pod, snap.Name, snap.Status.Progress)
	bks, retrying := waitBackupOutcome(t, e, "outage-down", snap.Name)
	back()
	logTimeToFinal(t, bks.CreationTimestamp.Time, bks.Status.Conditions)
	t.Logf("from MinIO stopped to the final state: %s", lastTransition(bks.Status.Conditions).Sub(stopped).Round(time.Second))
	c := meta.FindStatusCondition(bks.Status.Conditions, corev1alpha1.ConditionBackupSucceeded)
	checkUnreachable(t, "BackupSession outage-down", string(bks.Status.Phase), c, retrying)
	if got := snapshotOf(t, e, bks); got.Status.Phase == storagev1alpha1.SnapshotSucceeded {
		t.Errorf("Snapshot %s of the backup MinIO went away under is Succeeded", got.Name)
	}
	if ids := resticIDs(t, s.restic(t, "direct", "outage")); len(ids) != len(before) {
		t.Errorf("restic holds snapshots %v after the backup MinIO went away under, want only the earlier %v", ids, before)
	}

	e.WaitStorage("direct", storagev1alpha1.ReasonStorageAvailable)
	apply(t, e, backupSession, map[string]string{"Name": "outage-over", "Config": "outage"})
	next := e.WaitBackupSession("outage-over", corev1alpha1.BackupSessionSucceeded)
	logTimeToFinal(t, next.CreationTimestamp.Time, next.Status.Conditions)
	snapshot := snapshotOf(t, e, next).Name
	s.restore(t, "after-outage", "outage-repo", snapshot, want)
	return snapshot
}

// minioStoppedDuringRestore: MinIO is stopped once the restore pod runs:
// not later, for restic dump reads a few blobs ahead of the database and
// the first run's restore of the whole bulk, stopped once it showed
// progress, had already read everything and Succeeded. The RestoreSession fails within its 2 minute deadline with
// reason StorageUnreachable and a message naming the storage, having shown
// StorageUnreachable while restic retried. Once MinIO is back a new
// RestoreSession of the same Snapshot brings back every point.
func (s *storageLayout) minioStoppedDuringRestore(t *testing.T, snapshot string, want hyperbytedbtest.Contents) {
	e := s.e.With(t)
	e.DropAll()
	apply(t, e, timedRestore, map[string]string{"Name": "restore-outage", "Repository": "outage-repo", "Snapshot": snapshot, "Timeout": "2m"})
	pod := waitRestorePodRunning(t, e, "restore-outage")
	stopped, back := s.stopMinIO(t)
	var rs corev1alpha1.RestoreSession
	if err := e.Kube.Get(demo.Context(t, time.Minute), client.ObjectKey{Namespace: e.Params.Namespace, Name: "restore-outage"}, &rs); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped MinIO while restore pod %s runs (restored so far: %+v)", pod, rs.Status.Progress)
	ended, retrying := waitRestoreOutcome(t, e, "restore-outage")
	back()
	logTimeToFinal(t, ended.CreationTimestamp.Time, ended.Status.Conditions)
	t.Logf("from MinIO stopped to the final state: %s", lastTransition(ended.Status.Conditions).Sub(stopped).Round(time.Second))
	c := meta.FindStatusCondition(ended.Status.Conditions, corev1alpha1.ConditionRestoreSucceeded)
	checkUnreachable(t, "RestoreSession restore-outage", string(ended.Status.Phase), c, retrying)
	s.restore(t, "restore-outage-over", "outage-repo", snapshot, want)
}

// stopMinIO kills MinIO and returns when, and a function that starts it
// again on the same address and data. It runs at the latest when the test
// ends, so a failed wait leaves no outage to the subtests after it.
func (s *storageLayout) stopMinIO(t *testing.T) (time.Time, func()) {
	t.Helper()
	s.minio.Stop()
	stopped := time.Now()
	var once sync.Once
	back := func() {
		once.Do(func() {
			s.minio.Restart(t)
			t.Logf("MinIO is back after %s", time.Since(stopped).Round(time.Second))
		})
	}
	t.Cleanup(back)
	return stopped, back
}

// checkUnreachable checks a session that ran into an outage: Failed, its
// condition with reason StorageUnreachable and a message naming the
// storage, and, while it ran, the StorageUnreachable condition (retrying)
// seen True.
func checkUnreachable(t *testing.T, what, phase string, c, retrying *metav1.Condition) {
	t.Helper()
	if phase != "Failed" {
		t.Errorf("%s ended %s, want Failed", what, phase)
	}
	msg := ""
	if c != nil {
		msg = strings.ToLower(c.Message)
		t.Logf("%s as the user sees it: %s: %s", what, c.Reason, c.Message)
	}
	if c == nil || c.Reason != corev1alpha1.ReasonStorageUnreachable || !(strings.Contains(msg, "connection refused") || strings.Contains(msg, "storage")) {
		t.Errorf("%s condition = %+v, want reason %s with a message naming the storage", what, c, corev1alpha1.ReasonStorageUnreachable)
	}
	if retrying == nil {
		t.Errorf("%s never showed condition %s True while restic retried", what, storagev1alpha1.ConditionStorageUnreachable)
	} else {
		t.Logf("while restic retried: %s %s: %s", retrying.Type, retrying.Reason, retrying.Message)
	}
}

// waitRestorePodRunning waits until the Job of RestoreSession name has a
// Ready pod, and returns the pod's name.
func waitRestorePodRunning(t *testing.T, e *demo.Env, name string) string {
	t.Helper()
	return waitPodReady(t, e, "the restore pod of "+name, client.MatchingLabels{corev1alpha1.LabelRestoreSession: name})
}

// waitBackupOutcome waits until BackupSession session ends, watching its
// Snapshot for the StorageUnreachable condition, and returns the session
// and that condition as first seen True (nil if never).
func waitBackupOutcome(t *testing.T, e *demo.Env, session, snapshot string) (*corev1alpha1.BackupSession, *metav1.Condition) {
	t.Helper()
	var bks corev1alpha1.BackupSession
	var retrying *metav1.Condition
	err := demo.Poll(demo.Context(t, demo.Timeout), "BackupSession "+session+" ended", func(ctx context.Context) (bool, string, error) {
		var snap storagev1alpha1.Snapshot
		if err := e.Kube.Get(ctx, client.ObjectKey{Namespace: e.Params.Namespace, Name: snapshot}, &snap); err != nil {
			return false, "", err
		}
		retrying = firstTrue(retrying, snap.Status.Conditions)
		if err := e.Kube.Get(ctx, client.ObjectKey{Namespace: e.Params.Namespace, Name: session}, &bks); err != nil {
			return false, "", err
		}
		return bks.IsFinished(), fmt.Sprintf("phase %q, Snapshot conditions %v", bks.Status.Phase, snap.Status.Conditions), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return &bks, retrying
}

// waitRestoreOutcome waits until RestoreSession name ends, and returns it
// and its StorageUnreachable condition as first seen True (nil if never).
func waitRestoreOutcome(t *testing.T, e *demo.Env, name string) (*corev1alpha1.RestoreSession, *metav1.Condition) {
	t.Helper()
	var rs corev1alpha1.RestoreSession
	var retrying *metav1.Condition
	waitObject(t, e, e.Params.Namespace, name, &rs, func(rs *corev1alpha1.RestoreSession) (bool, string) {
		retrying = firstTrue(retrying, rs.Status.Conditions)
		return rs.IsFinished(), fmt.Sprintf("phase %q, conditions %v", rs.Status.Phase, rs.Status.Conditions)
	})
	return &rs, retrying
}

// firstTrue returns seen, or the StorageUnreachable condition of conds if
// it is True.
func firstTrue(seen *metav1.Condition, conds []metav1.Condition) *metav1.Condition {
	if seen != nil {
		return seen
	}
	if c := meta.FindStatusCondition(conds, storagev1alpha1.ConditionStorageUnreachable); c != nil && c.Status == metav1.ConditionTrue {
		return c.DeepCopy()
	}
	return nil
}

// lastTransition is when the last of conds changed.
func lastTransition(conds []metav1.Condition) time.Time {
	var last time.Time
	for _, c := range conds {
		if c.LastTransitionTime.After(last) {
			last = c.LastTransitionTime.Time
		}
	}
	return last
}
