package functions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

// deadLockAge is how long a lock whose host is no pod of the Job's
// namespace must have gone unrefreshed before Keepsake removes it: restic
// renews a live lock every restic.LockRefreshInterval, so a lock twice as
// old has lost its holder, wherever that ran.
const deadLockAge = 2 * restic.LockRefreshInterval

// LockWait says a run waits for a repository lock another process holds.
type LockWait struct {
	// Repository is the repository's name.
	Repository string `json:"repository"`
	// Component is the component the run works on, if any.
	Component string `json:"component,omitempty"`
	// SnapshotIDs are the restic snapshots a forget run removes, if any.
	SnapshotIDs []string `json:"snapshotIDs,omitempty"`
	// Holder is the host holding the lock: in a Job, its pod's name.
	Holder string `json:"holder"`
	// Since is when the holder last took or refreshed the lock.
	Since time.Time `json:"since"`
	// Message is what the run's object shows.
	Message string `json:"message"`
}

// LockWaitReporter is a reporter that can tell a run waits for a lock.
// Reporters that are not one leave the wait to the Job's log.
type LockWaitReporter interface {
	// LockWait reports w, best effort: it returns quickly and drops what
	// it cannot write.
	LockWait(ctx context.Context, w LockWait)
}

// podState is what the API says about the pod named in a lock.
type podState struct {
	// found: a pod of that name exists in the Job's namespace.
	found bool
	// ended: it has Succeeded or Failed, so its processes are gone.
	ended bool
}

// deadLock reports whether lock l has lost its holder, and why: its pod
// has ended, or there is no such pod and the lock went unrefreshed for
// deadLockAge. A lock of a running pod, or a fresh lock of a host that is
// no pod here (another namespace, a machine outside the cluster), is alive.
func deadLock(l restic.Lock, pod podState, now time.Time) (bool, string) {
	switch {
	case pod.found && pod.ended:
		return true, fmt.Sprintf("its pod %s has ended", l.Hostname)
	case pod.found:
		return false, ""
	case now.Sub(l.Time) > deadLockAge:
		return true, fmt.Sprintf("no pod %s exists and the lock was not refreshed since %s", l.Hostname, l.Time.UTC().Format(time.RFC3339))
	}
	return false, ""
}

// LockKeeper removes the locks killed Jobs left in a repository before a
// run, and reports the live ones the run will wait for.
type LockKeeper struct {
	// Pods reads the pods of Namespace; nil asks nothing, and only locks
	// that are stale to restic itself (`restic unlock`) are removed.
	Pods      client.Reader
	Namespace string
	// Reporter, if a LockWaitReporter, is told about a wait.
	Reporter any
	// Log receives what was removed and why.
	Log io.Writer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Prepare removes the dead locks of repo (spec), then, if a live lock
// conflicts with the run (any lock for an exclusive run, an exclusive one
// for the others), reports the wait as w. restic then waits for the lock
// itself (--retry-lock), bounded. Failures are logged, not returned: the
// run's restic reports the lock if it matters.
func (k *LockKeeper) Prepare(ctx context.Context, repo *restic.Repo, spec RepositorySpec, exclusive bool, w LockWait) {
	if k == nil {
		return
	}
	locks, err := repo.LockInfos(ctx)
	if err != nil {
		k.logf("repository %s: read locks: %v", spec.Name, err)
		return
	}
	var live []restic.Lock
	for _, l := range locks {
		if !k.removeIfDead(ctx, spec, l) && (exclusive || l.Exclusive) {
			live = append(live, l)
		}
	}
	if len(live) > 0 {
		l := live[0]
		w.Repository, w.Holder, w.Since = spec.Name, l.Hostname, l.Time
		w.Message = fmt.Sprintf("waiting for the repository lock held by %s since %s (for at most %s)",
			l.Hostname, l.Time.UTC().Format(time.RFC3339), lockWait)
		k.logf("repository %s: %s", spec.Name, w.Message)
		if rep, ok := k.Reporter.(LockWaitReporter); ok {
			rep.LockWait(ctx, w)
		}
	}
}

// removeIfDead removes lock l if its holder is gone, and says whether it did.
func (k *LockKeeper) removeIfDead(ctx context.Context, spec RepositorySpec, l restic.Lock) bool {
	if k.Pods == nil || l.Hostname == "" {
		return false
	}
	pod, err := k.pod(ctx, l.Hostname)
	if err != nil {
		k.logf("repository %s: lock %s: %v", spec.Name, short(l.ID), err)
		return false
	}
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	dead, why := deadLock(l, pod, now())
	if !dead {
		return false
	}
	if err := spec.removeLock(ctx, l.ID); err != nil {
		k.logf("repository %s: remove the lock of %s (%s): %v", spec.Name, l.Hostname, why, err)
		return false
	}
	k.logf("repository %s: removed the lock of %s: %s", spec.Name, l.Hostname, why)
	return true
}

// pod asks the API about pod name.
func (k *LockKeeper) pod(ctx context.Context, name string) (podState, error) {
	var pod corev1.Pod
	err := k.Pods.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: name}, &pod)
	if apierrors.IsNotFound(err) {
		return podState{}, nil
	}
	if err != nil {
		return podState{}, fmt.Errorf("get pod %s/%s: %w", k.Namespace, name, err)
	}
	ended := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	return podState{found: true, ended: ended}, nil
}

func (k *LockKeeper) logf(format string, args ...any) {
	if k.Log != nil {
		fmt.Fprintf(k.Log, format+"\n", args...)
	}
}

// short is a lock or snapshot ID as restic prints it.
func short(id string) string { return id[:min(len(id), 8)] }

// errNoLockRemoval: the repository is given as a restic string that is not
// a local path, so Keepsake cannot reach its lock files.
var errNoLockRemoval = errors.New("cannot remove lock files of a repository given as a remote restic string")

// removeLock deletes lock file id of the repository: restic has no command
// that removes one given lock.
func (s RepositorySpec) removeLock(ctx context.Context, id string) error {
	if strings.ContainsAny(id, "/\\.") {
		return fmt.Errorf("lock ID %q is not an ID", id)
	}
	if s.StorageFile == "" {
		if isRemote(s.Restic) {
			return errNoLockRemoval
		}
		return ignoreMissing(os.Remove(filepath.Join(s.Restic, "locks", id)))
	}
	sc, err := s.storageConfig()
	if err != nil {
		return err
	}
	store, err := storage.Open(sc)
	if err != nil {
		return err
	}
	return store.Delete(ctx, path.Join(s.Namespace, s.Directory, "locks", id))
}

// isRemote reports whether a restic repository string names a backend
// (s3:, rest:, sftp:, ...) rather than a local path.
func isRemote(repo string) bool {
	scheme, _, ok := strings.Cut(repo, ":")
	return ok && !strings.ContainsAny(scheme, `/\`)
}

func ignoreMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
