package functions

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// backupAs writes one restic snapshot of component for BackupSession
// session into repo, as a backup Job does, and returns its ID.
func backupAs(t *testing.T, repo *restic.Repo, session, component string) string {
	t.Helper()
	opts := restic.BackupOptions{Filename: component, Host: "prod/db", Tags: append(snapshotTags(component, "metrics-backup", "hourly"), runTag(session)...)}
	sum, err := repo.Backup(context.Background(), strings.NewReader(session+"/"+component), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sum.SnapshotID
}

// TestSyncDiscoversSnapshots checks repository sync against MinIO, restic
// and a kube-apiserver: each backup in the repository that no Snapshot
// object holds (their objects were deleted, say) gets one Snapshot,
// Succeeded, labelled discovered, with deletionPolicy Retain and the
// restic ID of each component, which is what a RestoreSession reads; a
// backup a Snapshot holds gets none, and a second sync creates nothing.
func TestSyncDiscoversSnapshots(t *testing.T) {
	c, api := startKube(t)
	s := newStorageStand(t)
	spec := s.repo(t, "primary")
	repo := s.resticRepo(t, spec)
	if err := repo.InitIfAbsent(context.Background()); err != nil {
		t.Fatal(err)
	}
	lostDump, lostWAL := backupAs(t, repo, "bks-lost", "dump"), backupAs(t, repo, "bks-lost", "wal")
	other := backupAs(t, repo, "bks-other", "dump")
	held := backupAs(t, repo, "bks-held", "dump")
	succeededSnapshot(t, c, "held", "primary", false, held)

	cfg := SyncConfig{Repository: spec, Namespace: "default", Restic: servers.Bin(t, "restic"),
		CacheDir: filepath.Join(s.dir, "cache"), Client: c}
	res, err := RunSync(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Found != 4 || len(res.Created) != 2 {
		t.Fatalf("sync found %d, created %v; want 4 found and 2 created", res.Found, res.Created)
	}
	want := map[string]map[string]string{"bks-lost": {"dump": lostDump, "wal": lostWAL}, "bks-other": {"dump": other}}
	for _, name := range res.Created {
		snap := getSnapshot(t, c, name)
		ids := want[snap.Annotations[storagev1alpha1.AnnotationDiscoveredSession]]
		if snap.Labels[storagev1alpha1.LabelDiscovered] != "true" || snap.Spec.Repository != "primary" ||
			snap.Spec.DeletionPolicy != storagev1alpha1.SnapshotRetain || snap.Status.Phase != storagev1alpha1.SnapshotSucceeded ||
			snap.Status.SnapshotTime == nil || int(snap.Status.TotalComponents) != len(ids) || ids == nil {
			t.Errorf("discovered Snapshot %s: %+v %+v", name, snap.ObjectMeta, snap.Status)
		}
		for comp, id := range ids {
			if got := snap.Status.Components[comp]; got.ResticSnapshotID != id || got.Phase != storagev1alpha1.ComponentSucceeded {
				t.Errorf("Snapshot %s component %s: %+v, want restic snapshot %s", name, comp, got, id)
			}
		}
	}

	createRepositoryObject(t, c, "primary")
	env := []string{"KUBECONFIG=" + kubeconfig(t, api), "KEEPSAKE_REPORT_TO=kubernetes", "KEEPSAKE_NAMESPACE=default",
		"KEEPSAKE_REPOSITORY=" + specFlag(spec)}
	out, _ := keepsake(t, 0, env, "run", "sync", "--restic", servers.Bin(t, "restic"), "--cache-dir", filepath.Join(s.dir, "cache"))
	again := event[SyncResult](t, out, "sync")
	if again.Found != 4 || len(again.Created) != 0 {
		t.Fatalf("second sync (keepsake run sync) %+v; want 4 found and nothing created", again)
	}
	// The sync measures what the storage holds (restic stats --mode
	// raw-data) into the Repository's size.
	st, err := repo.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rs := getRepositoryObject(t, c, "primary").Status; rs.SizeBytes <= 0 || uint64(rs.SizeBytes) != st.TotalSize || rs.Size == "" || again.StoredSizeError != "" {
		t.Errorf("Repository size %q (%d bytes) after sync (%+v), want restic's stored %d bytes", rs.Size, rs.SizeBytes, again, st.TotalSize)
	}
	var list storagev1alpha1.SnapshotList
	if err := c.List(context.Background(), &list, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, snap := range list.Items {
		names = append(names, snap.Name)
	}
	if want := append([]string{"held"}, res.Created...); !sameIDs(names, want) {
		t.Errorf("Snapshots %v, want %v", names, want)
	}
}

// TestSyncBeforeTheFirstBackup: a Repository is synced as soon as it is
// Ready, before any backup made its restic repository; that sync finds
// nothing and succeeds (it failed with "repository does not exist", and the
// Repository then said SyncFailed for an hour).
func TestSyncBeforeTheFirstBackup(t *testing.T) {
	c, _ := startKube(t)
	s := newStorageStand(t)
	spec := s.repo(t, "empty")
	cfg := SyncConfig{Repository: spec, Namespace: "default", Restic: servers.Bin(t, "restic"),
		CacheDir: filepath.Join(s.dir, "cache"), Client: c}
	res, err := RunSync(context.Background(), cfg)
	if err != nil {
		t.Fatalf("sync of a location no backup wrote yet: %v", err)
	}
	if res.Found != 0 || len(res.Created) != 0 {
		t.Fatalf("sync of an empty location found %d, created %v", res.Found, res.Created)
	}
}

// TestSyncGroupsRealBackups checks sync on backups the runtime made itself:
// two runs of one session are two Snapshots, each naming its BackupSession
// and session (a backup tagged only with its session would merge them).
func TestSyncGroupsRealBackups(t *testing.T) {
	c, _ := startKube(t)
	s := newStand(t)
	hyperbytedbtest.Mixed(time.Now()).Write(t, s.api)
	spec := s.repo(t, "real")
	for _, run := range []string{"bks-1", "bks-2"} {
		var out bytes.Buffer
		cfg := BackupConfig{Common: s.common(t, &out, nil), Repositories: []RepositorySpec{spec},
			Configuration: "metrics-backup", Session: "hourly", Run: run}
		if err := RunBackup(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	res, err := RunSync(context.Background(), SyncConfig{Repository: spec, Namespace: "default",
		Restic: servers.Bin(t, "restic"), CacheDir: filepath.Join(s.dir, "cache"), Client: c})
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]bool{}
	for _, name := range res.Created {
		snap := getSnapshot(t, c, name)
		if snap.Spec.Session != "hourly" || snap.Status.Components["dump"].ResticSnapshotID == "" {
			t.Errorf("discovered Snapshot %s: session %q, components %v", name, snap.Spec.Session, snap.Status.Components)
		}
		runs[snap.Spec.BackupSession] = true
	}
	if len(res.Created) != 2 || !runs["bks-1"] || !runs["bks-2"] {
		t.Fatalf("sync created %v for BackupSessions %v; want one Snapshot each for bks-1 and bks-2", res.Created, runs)
	}
}
