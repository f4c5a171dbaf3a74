package functions

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// Retention and forget runs of the keepsake binary against MinIO with
// real restic, reporting to a real kube-apiserver.

// backups makes n small snapshots of component dump as RunBackup tags
// them, an hour apart and oldest first, and returns their IDs.
func backups(t *testing.T, repo *restic.Repo, n int) []string {
	t.Helper()
	ctx := context.Background()
	if err := repo.InitIfAbsent(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		opts := restic.BackupOptions{Filename: "dump", Host: "prod/db", Tags: snapshotTags("dump", "db-backup", "hourly"),
			Time: time.Now().Add(time.Duration(i-n) * time.Hour)}
		sum, err := repo.Backup(ctx, strings.NewReader(strings.Repeat("data ", i+1)), opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sum.SnapshotID)
	}
	return ids
}

// specFlag is the --repository value of spec.
func specFlag(spec RepositorySpec) string {
	return "name=" + spec.Name + ",storage=" + spec.StorageFile + ",credentials=" + spec.CredentialsDir +
		",namespace=" + spec.Namespace + ",directory=" + spec.Directory + ",password-file=" + spec.PasswordFile
}

// succeededSnapshot creates a Snapshot object whose components hold the
// given restic snapshot IDs, as a backup Job leaves it.
func succeededSnapshot(t *testing.T, c client.Client, name, repository string, finalizer bool, ids ...string) {
	t.Helper()
	snap := createSnapshot(t, c, name, "bks-"+name, repository)
	if finalizer {
		snap.Finalizers = []string{storagev1alpha1.FinalizerForget}
		if err := c.Update(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
	}
	snap.Status = storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotSucceeded, Components: map[string]storagev1alpha1.ComponentStatus{}}
	for i, id := range ids {
		snap.Status.Components[[]string{"dump", "wal"}[i]] = storagev1alpha1.ComponentStatus{Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: id}
	}
	if err := c.Status().Update(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
}

// kubeconfig writes a kubeconfig for api, as a Job's KUBECONFIG would be.
func kubeconfig(t *testing.T, api *servers.APIServer) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, api.Env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// event returns the one stdout event of kind in out, decoded.
func event[T any](t *testing.T, out, kind string) T {
	t.Helper()
	var e map[string]json.RawMessage
	var v T
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if json.Unmarshal([]byte(line), &e) == nil && string(e["event"]) == `"`+kind+`"` {
			if err := json.Unmarshal(e[kind], &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s event in:\n%s", kind, out)
	return v
}

func TestRetention(t *testing.T) {
	c, api := startKube(t)
	s := newStorageStand(t)
	spec := s.repo(t, "primary")
	repo := s.resticRepo(t, spec)
	ids := backups(t, repo, 4)

	succeededSnapshot(t, c, "gone", "primary", false, ids[0])
	succeededSnapshot(t, c, "gone-held", "primary", true, ids[1]) // the operator's finalizer holds it
	succeededSnapshot(t, c, "partly-kept", "primary", false, ids[1], ids[2])
	succeededSnapshot(t, c, "kept", "primary", false, ids[3])
	succeededSnapshot(t, c, "other-repository", "offsite", false, ids[0])
	createSnapshot(t, c, "running", "bks-running", "primary")

	env := []string{"KUBECONFIG=" + kubeconfig(t, api), "KEEPSAKE_REPORT_TO=kubernetes", "KEEPSAKE_NAMESPACE=default",
		"KEEPSAKE_REPOSITORY=" + specFlag(spec), "KEEPSAKE_KEEP_LAST=2", "KEEPSAKE_SESSION=hourly", "KEEPSAKE_CONFIGURATION=db-backup"}
	out, _ := keepsake(t, 0, env, "run", "retention", "--restic", servers.Bin(t, "restic"), "--cache-dir", filepath.Join(s.dir, "cache"))
	res := event[RetentionResult](t, out, "retention")
	if res.Repository != "primary" || !sameIDs(res.Removed, ids[:2]) || !sameIDs(res.Kept, ids[2:]) {
		t.Fatalf("retention event %+v, want removed %v and kept %v", res, ids[:2], ids[2:])
	}
	var left []string
	for _, snap := range s.snapshots(t, spec) {
		left = append(left, snap.ID)
	}
	if !sameIDs(left, ids[2:]) {
		t.Fatalf("restic lists %v, want the two newest %v", left, ids[2:])
	}

	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "gone"}, &storagev1alpha1.Snapshot{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Snapshot gone: %v, want deleted", err)
	}
	held := getSnapshot(t, c, "gone-held")
	if held.Annotations[storagev1alpha1.AnnotationForgotten] != "true" || held.DeletionTimestamp == nil {
		t.Fatalf("Snapshot gone-held: annotations %v, deletion %v; want forgotten and being deleted", held.Annotations, held.DeletionTimestamp)
	}
	for _, name := range []string{"partly-kept", "kept", "other-repository", "running"} {
		if snap := getSnapshot(t, c, name); snap.DeletionTimestamp != nil || len(snap.Annotations) != 0 {
			t.Fatalf("Snapshot %s was touched: %+v", name, snap.ObjectMeta)
		}
	}

	// Run again, as a retried Job would: nothing more to remove.
	out, _ = keepsake(t, 0, env, "run", "retention", "--restic", servers.Bin(t, "restic"), "--cache-dir", filepath.Join(s.dir, "cache"))
	if res := event[RetentionResult](t, out, "retention"); len(res.Removed) != 0 || !sameIDs(res.Kept, ids[2:]) {
		t.Fatalf("second retention: %+v", res)
	}
}

func TestForget(t *testing.T) {
	s := newStorageStand(t)
	spec := s.repo(t, "primary")
	ids := backups(t, s.resticRepo(t, spec), 2)
	common := []string{"run", "forget", "--repository", specFlag(spec), "--restic", servers.Bin(t, "restic"),
		"--cache-dir", filepath.Join(s.dir, "cache")}

	out, _ := keepsake(t, 0, nil, append(common, "--snapshot-id", ids[0][:8])...)
	res := event[ForgetResult](t, out, "forget")
	if !slices.Equal(res.Forgotten, ids[:1]) || len(res.Missing) != 0 {
		t.Fatalf("forget event %+v, want %s forgotten", res, ids[0])
	}
	if snaps := s.snapshots(t, spec); len(snaps) != 1 || snaps[0].ID != ids[1] {
		t.Fatalf("snapshots left: %+v, want only %s", snaps, ids[1])
	}

	// A retried Job: the snapshot is gone already, which is no error.
	out, _ = keepsake(t, 0, []string{"KEEPSAKE_SNAPSHOT_ID=" + ids[0] + "\n"}, common...)
	if res := event[ForgetResult](t, out, "forget"); len(res.Forgotten) != 0 || !slices.Equal(res.Missing, ids[:1]) {
		t.Fatalf("second forget: %+v", res)
	}
	if snaps := s.snapshots(t, spec); len(snaps) != 1 {
		t.Fatalf("snapshots left after the second forget: %+v", snaps)
	}

	// A real failure is one: the wrong password.
	bad := spec
	bad.PasswordFile = s.file(t, "wrong-password", "nope")
	_, stderr := keepsake(t, 1, nil, "run", "forget", "--repository", specFlag(bad), "--restic", servers.Bin(t, "restic"),
		"--snapshot-id", ids[1])
	if !strings.Contains(stderr, "wrong repository password") {
		t.Fatalf("forget with a wrong password: %s", stderr)
	}
}

// sameIDs reports whether a and b hold the same IDs in any order.
func sameIDs(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(id string) bool { return !slices.Contains(b, id) })
}
