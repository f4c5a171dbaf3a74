package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

// SyncConfig is one repository sync: the restic snapshots of Repository
// (Repository.Name in Namespace) that no Snapshot object holds get one.
type SyncConfig struct {
	// Repository is the repository to list.
	Repository RepositorySpec
	// Namespace holds the Repository and its Snapshots.
	Namespace string
	// Restic and CacheDir run restic.
	Restic, CacheDir string
	// Client reads and creates Snapshot objects.
	Client client.Client
	// Sizes, if not nil, receives the repository's stored size
	// (`restic stats --mode raw-data`) after the sync.
	Sizes RepositoryReporter
}

// SyncResult says what a sync found and created.
type SyncResult struct {
	// Repository is the Repository's name.
	Repository string `json:"repository"`
	// Found counts the restic snapshots Keepsake took in the repository.
	Found int `json:"found"`
	// Created names the Snapshot objects created.
	Created []string `json:"created,omitempty"`
	// StoredBytes is the repository's size in the storage; zero when
	// stats failed or were not asked for.
	StoredBytes uint64 `json:"storedBytes,omitempty"`
	// StoredSizeError says why the stored size could not be recorded.
	StoredSizeError string `json:"storedSizeError,omitempty"`
}

// RunSync lists the repository's restic snapshots (`restic snapshots
// --json --tag keepsake`) and creates a Snapshot object, marked
// discovered, for each backup no Snapshot object of the Repository holds:
// backups outlive the objects that made them, and a Repository created on
// existing data shows its backups. Running it again creates nothing more.
func RunSync(ctx context.Context, cfg SyncConfig) (*SyncResult, error) {
	rcfg, err := cfg.Repository.resticConfig(cfg.Restic, cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	repo := restic.New(rcfg)
	snaps, err := repo.Snapshots(ctx, "keepsake")
	if errors.Is(err, restic.ErrRepositoryMissing) {
		// No backup made the restic repository yet: nothing to discover.
		return &SyncResult{Repository: cfg.Repository.Name}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sync %s: %w", cfg.Repository.Name, err)
	}
	var list storagev1alpha1.SnapshotList
	if err := cfg.Client.List(ctx, &list, client.InNamespace(cfg.Namespace)); err != nil {
		return nil, fmt.Errorf("sync %s: list Snapshots: %w", cfg.Repository.Name, err)
	}
	res := &SyncResult{Repository: cfg.Repository.Name, Found: len(snaps)}
	for _, snap := range discoveredSnapshots(cfg.Namespace, cfg.Repository.Name, snaps, list.Items) {
		if err := createDiscovered(ctx, cfg.Client, snap); err != nil {
			return res, err
		}
		res.Created = append(res.Created, snap.Name)
	}
	reportStoredSize(ctx, cfg, repo, res)
	return res, nil
}

// reportStoredSize reports the repository's stored size to cfg.Sizes. It
// is not the sync's purpose: a failure is noted in res, and the next sync
// tries again.
func reportStoredSize(ctx context.Context, cfg SyncConfig, repo *restic.Repo, res *SyncResult) {
	if cfg.Sizes == nil {
		return
	}
	if res.StoredBytes = storedBytes(ctx, repo); res.StoredBytes == 0 {
		res.StoredSizeError = "restic stats failed"
		return
	}
	if err := cfg.Sizes.StoredSize(ctx, cfg.Repository.Name, res.StoredBytes); err != nil {
		res.StoredSizeError = err.Error()
	}
}

// discoveredSnapshots returns the Snapshot objects to create for the
// restic snapshots snaps of Repository repo: one per backup (the restic
// snapshots sharing a backupsession= tag, one per component; a snapshot
// without one, made before that tag existed, is a backup of its own) none of whose restic snapshots an existing
// Snapshot of repo holds.
func discoveredSnapshots(ns, repo string, snaps []restic.Snapshot, existing []storagev1alpha1.Snapshot) []*storagev1alpha1.Snapshot {
	known := map[string]bool{}
	for _, s := range existing {
		if s.Spec.Repository != repo {
			continue
		}
		for _, c := range s.Status.Components {
			known[c.ResticSnapshotID] = true
		}
	}
	groups := map[string][]restic.Snapshot{}
	for _, s := range snaps {
		key := tagValue(s.Tags, RunTagPrefix)
		if key == "" {
			key = "id=" + s.ID
		}
		groups[key] = append(groups[key], s)
	}
	var out []*storagev1alpha1.Snapshot
	keys := slices.Sorted(maps.Keys(groups))
	for _, key := range keys {
		group := groups[key]
		if slices.ContainsFunc(group, func(s restic.Snapshot) bool { return known[s.ID] }) {
			continue
		}
		out = append(out, discoveredSnapshot(ns, repo, group))
	}
	return out
}

// discoveredSnapshot is the Snapshot object of one backup: its restic
// snapshots, one per component. Its name is derived from the smallest
// restic ID, so that two syncs name it alike; deletionPolicy Retain, since
// the data may have been made, and still be used, by another cluster.
func discoveredSnapshot(ns, repo string, group []restic.Snapshot) *storagev1alpha1.Snapshot {
	slices.SortFunc(group, func(a, b restic.Snapshot) int { return strings.Compare(a.ID, b.ID) })
	run := tagValue(group[0].Tags, RunTagPrefix)
	snap := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   ns,
			Name:        discoveredName(repo, group[0].ID),
			Labels:      map[string]string{storagev1alpha1.LabelDiscovered: "true"},
			Annotations: map[string]string{storagev1alpha1.AnnotationDiscoveredSession: run},
		},
		Spec: storagev1alpha1.SnapshotSpec{Repository: repo, DeletionPolicy: storagev1alpha1.SnapshotRetain,
			Session: tagValue(group[0].Tags, "session="), BackupSession: run},
	}
	snap.Status = discoveredStatus(group)
	return snap
}

// discoveredStatus is the status of a Succeeded Snapshot holding group.
func discoveredStatus(group []restic.Snapshot) storagev1alpha1.SnapshotStatus {
	st := storagev1alpha1.SnapshotStatus{
		Phase:      storagev1alpha1.SnapshotSucceeded,
		Components: map[string]storagev1alpha1.ComponentStatus{},
	}
	var total uint64
	for _, s := range group {
		name := tagValue(s.Tags, "component=")
		if name == "" && len(s.Paths) > 0 {
			name = strings.TrimPrefix(s.Paths[0], "/")
		}
		c := storagev1alpha1.ComponentStatus{Phase: storagev1alpha1.ComponentSucceeded, ResticSnapshotID: s.ID}
		if len(s.Paths) > 0 {
			c.Path = s.Paths[0]
		}
		if s.Summary != nil {
			c.SizeBytes, c.Size = int64(s.Summary.TotalBytesProcessed), humanBytes(s.Summary.TotalBytesProcessed)
			total += s.Summary.TotalBytesProcessed
		}
		st.Components[name] = c
		if t := metav1.NewTime(s.Time); st.SnapshotTime == nil || st.SnapshotTime.Before(&t) {
			st.SnapshotTime = &t
		}
	}
	st.TotalComponents = int32(len(st.Components))
	st.SizeBytes, st.Size = int64(total), humanBytes(total)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: storagev1alpha1.ConditionDiscovered, Status: metav1.ConditionTrue, Reason: storagev1alpha1.ReasonFoundInRepository,
		Message: fmt.Sprintf("%d restic snapshot(s) found in the repository with no Snapshot object", len(group)),
	})
	return st
}

// createDiscovered creates snap and then writes its status; one created
// by an earlier, interrupted sync gets its status written.
func createDiscovered(ctx context.Context, c client.Client, snap *storagev1alpha1.Snapshot) error {
	st := snap.Status
	err := c.Create(ctx, snap)
	if apierrors.IsAlreadyExists(err) {
		err = c.Get(ctx, client.ObjectKeyFromObject(snap), snap)
	}
	if err != nil {
		return fmt.Errorf("create discovered Snapshot %s: %w", snap.Name, err)
	}
	snap.Status = st
	if err := c.Status().Update(ctx, snap); err != nil {
		return fmt.Errorf("write the status of discovered Snapshot %s: %w", snap.Name, err)
	}
	return nil
}

// discoveredName is the name of the discovered Snapshot of repo whose
// smallest restic ID is id.
func discoveredName(repo, id string) string {
	if len(repo) > 200 {
		repo = strings.TrimRight(repo[:200], "-.")
	}
	return repo + "-" + id[:min(len(id), 12)]
}

// tagValue is the value of the first tag starting with prefix, "" when
// none does.
func tagValue(tags []string, prefix string) string {
	for _, t := range tags {
		if v, ok := strings.CutPrefix(t, prefix); ok {
			return v
		}
	}
	return ""
}

// runSync runs `keepsake run sync`, which writes Snapshot objects and so
// needs --report-to kubernetes; the result goes to stdout as one JSON line.
func runSync(ctx context.Context, f *runFlags, stdout, stderr io.Writer) error {
	if f.reportTo != reportKubernetes {
		return errors.New("sync creates Snapshot objects: it needs --report-to kubernetes")
	}
	c, err := f.client(stderr)
	if err != nil {
		return err
	}
	res, err := RunSync(ctx, SyncConfig{
		Repository: f.repositories[0], Namespace: f.namespace, Restic: resticBinary(f.restic), CacheDir: f.cacheDir, Client: c,
		Sizes: NewRepositoryStatusReporter(c, f.namespace),
	})
	return emitResult(stdout, "sync", res, err)
}

// emitResult writes res, the result of a run of command event, to stdout
// as one JSON line {"event": event, event: res}, when there is one, and
// returns the run's err joined with any failure to write.
func emitResult[T any](stdout io.Writer, event string, res *T, err error) error {
	if res == nil {
		return err
	}
	if werr := json.NewEncoder(stdout).Encode(map[string]any{"event": event, event: res}); werr != nil {
		err = errors.Join(err, werr)
	}
	return err
}
