package functions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

// VerifyConfig configures RunVerify.
type VerifyConfig struct {
	// Repository holds the Snapshot's data.
	Repository RepositorySpec
	// Namespace and Snapshot name the Snapshot object to verify.
	Namespace, Snapshot string
	// Client reads the Snapshot and writes its status.
	Client client.Client
	// Restic and CacheDir run restic.
	Restic, CacheDir string
	// Job and Request name the verify Job's run and the request it
	// answers; both are echoed into status.verification.
	Job, Request string
	// Locks removes the locks of ended Jobs first; nil leaves them to restic.
	Locks *LockKeeper
	// Driver is the path of the backup's driver binary, which counts the
	// dump of a component whose backup recorded counts (sdk.Verifier);
	// empty when the Job has none: then only bytes are verified.
	Driver string
	// NoDriver says why there is no Driver, for the verdict.
	NoDriver string
	// Log receives the driver's log lines; nil means os.Stderr.
	Log io.Writer
}

// ComponentCheck is what reading one component back found.
type ComponentCheck struct {
	// Component is the component's name.
	Component string `json:"component"`
	// Bytes is how much was read back, and Recorded what the backup
	// recorded.
	Bytes    int64 `json:"bytes"`
	Recorded int64 `json:"recorded"`
	// SHA256 is the hash of what was read back.
	SHA256 string `json:"sha256,omitempty"`
	// Counts are what the driver counted in what was read back, and
	// RecordedCounts what the backup recorded; Counts is nil when they
	// were not counted, and CountsNote then says why, if the backup
	// recorded counts.
	Counts         map[string]uint64 `json:"counts,omitempty"`
	RecordedCounts map[string]int64  `json:"recordedCounts,omitempty"`
	CountsNote     string            `json:"countsNote,omitempty"`
	// Problem says what did not match; empty when it did.
	Problem string `json:"problem,omitempty"`
}

// VerifyResult is the outcome of one verification.
type VerifyResult struct {
	// Snapshot is the Snapshot object's name.
	Snapshot string `json:"snapshot"`
	// Verified is true when every component read back whole and matched.
	Verified bool `json:"verified"`
	// Components are the per-component findings, by name.
	Components []ComponentCheck `json:"components"`
	// Message sums it up for the status.
	Message string `json:"message"`
}

// errNotVerifiable: the Snapshot holds nothing that can be read back.
var errNotVerifiable = errors.New("the Snapshot is not Succeeded, or records no restic snapshot")

// RunVerify reads every component of a Succeeded Snapshot back from the
// repository (`restic dump`, which decrypts and authenticates every blob)
// and compares what it read with what the backup recorded, then records
// the verdict in the Snapshot's status: verificationStatus Verified or
// VerificationFailed, status.verification and condition Verified. Data
// that cannot be read or does not match is a verdict; a repository that
// cannot be reached at all (unreachable storage, wrong password, a lock)
// is an error with no verdict, for the Job to retry.
func RunVerify(ctx context.Context, cfg VerifyConfig) (*VerifyResult, error) {
	var snap storagev1alpha1.Snapshot
	key := client.ObjectKey{Namespace: cfg.Namespace, Name: cfg.Snapshot}
	if err := withRetry(ctx, func(ctx context.Context) error { return cfg.Client.Get(ctx, key, &snap) }); err != nil {
		return nil, fmt.Errorf("verify Snapshot %s: %w", key, err)
	}
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || len(snap.Status.Components) == 0 {
		return nil, fmt.Errorf("verify Snapshot %s: %w", key, errNotVerifiable)
	}
	rc, err := cfg.Repository.resticConfig(cfg.Restic, cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	repo := restic.New(rc)
	cfg.Locks.Prepare(ctx, repo, cfg.Repository, false, LockWait{})
	// Listing opens the repository: what fails here says nothing about
	// the data.
	stored, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify Snapshot %s: open repository %s: %w", key, cfg.Repository.Name, err)
	}
	res := &VerifyResult{Snapshot: snap.Name, Verified: true}
	counter := &dumpCounter{driver: cfg.Driver, noDriver: cfg.NoDriver, log: cfg.Log}
	defer counter.close()
	for _, name := range slices.Sorted(maps.Keys(snap.Status.Components)) {
		check, err := readBack(ctx, repo, stored, name, snap.Status.Components[name], counter)
		if err != nil {
			return nil, fmt.Errorf("verify Snapshot %s: %w", key, err)
		}
		res.Components = append(res.Components, check)
		res.Verified = res.Verified && check.Problem == ""
	}
	res.Message = verifyMessage(res)
	if err := recordVerification(ctx, cfg, res); err != nil {
		return res, err
	}
	return res, nil
}

// readBack dumps one component (one of the repository's stored snapshots)
// and compares it with its recorded status: its size, and, when the
// backup recorded counts, what counter's driver counts in it.
// Only failures to reach the repository, or to start the driver, are
// errors.
func readBack(ctx context.Context, repo *restic.Repo, stored []restic.Snapshot, name string, c storagev1alpha1.ComponentStatus,
	counter *dumpCounter) (ComponentCheck, error) {
	check := ComponentCheck{Component: name, Recorded: c.SizeBytes, RecordedCounts: c.Counts}
	if c.ResticSnapshotID == "" {
		check.Problem = "no restic snapshot recorded"
		return check, nil
	}
	if !slices.ContainsFunc(stored, func(s restic.Snapshot) bool { return s.ID == c.ResticSnapshotID }) {
		check.Problem = fmt.Sprintf("restic snapshot %s is not in the repository", short(c.ResticSnapshotID))
		return check, nil
	}
	path := c.Path
	if path == "" {
		path = name
	}
	h := sha256.New()
	out := &countingWriter{w: h}
	dump := func(w io.Writer) error { return repo.Dump(ctx, c.ResticSnapshotID, path, w) }
	var err error
	if len(c.Counts) > 0 {
		check.Counts, check.CountsNote, err = counter.count(ctx, name, out, dump)
	} else {
		err = dump(out)
	}
	check.Bytes, check.SHA256 = out.n, hex.EncodeToString(h.Sum(nil))
	var fatal *driverStartError
	switch {
	case unreachable(err) || errors.As(err, &fatal):
		return check, err
	case err != nil:
		check.Problem = "read back failed: " + err.Error()
	case c.SizeBytes > 0 && out.n != c.SizeBytes:
		check.Problem = fmt.Sprintf("read back %d bytes, the backup recorded %d", out.n, c.SizeBytes)
	default:
		check.Problem = countsProblem(c.Counts, check.Counts)
	}
	return check, nil
}

// unreachable reports whether err says nothing about the data: the
// repository could not be reached or opened at all.
func unreachable(err error) bool {
	for _, kind := range []error{restic.ErrUnreachable, restic.ErrAccessDenied, restic.ErrWrongPassword, restic.ErrLocked,
		restic.ErrRepositoryMissing, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// verifyMessage sums up res for the status.
func verifyMessage(res *VerifyResult) string {
	var ok, bad []string
	for _, c := range res.Components {
		if c.Problem != "" {
			bad = append(bad, c.Component+": "+c.Problem)
		} else {
			ok = append(ok, fmt.Sprintf("%s (%s)", c.Component, strings.Join(append([]string{humanBytes(uint64(c.Bytes))}, countsSummary(c)...), ", ")))
		}
	}
	if len(bad) > 0 {
		return fmt.Sprintf("%d of %d component(s) did not read back as recorded: %s", len(bad), len(res.Components), strings.Join(bad, "; "))
	}
	return fmt.Sprintf("%d component(s) read back whole and as large as recorded: %s", len(ok), strings.Join(ok, ", "))
}

// recordVerification writes the verdict into the Snapshot's status, by
// read-modify-update (the sync Role may update Snapshot status, not patch
// it), retried on conflicts.
func recordVerification(ctx context.Context, cfg VerifyConfig, res *VerifyResult) error {
	key := client.ObjectKey{Namespace: cfg.Namespace, Name: cfg.Snapshot}
	err := withRetry(ctx, func(ctx context.Context) error {
		var snap storagev1alpha1.Snapshot
		if err := cfg.Client.Get(ctx, key, &snap); err != nil {
			return err
		}
		st := &snap.Status
		cond := metav1.Condition{Type: storagev1alpha1.ConditionVerified, Status: metav1.ConditionTrue,
			Reason: storagev1alpha1.ReasonVerificationPassed, Message: res.Message, ObservedGeneration: snap.Generation}
		st.VerificationStatus = storagev1alpha1.Verified
		if !res.Verified {
			st.VerificationStatus, cond.Status, cond.Reason = storagev1alpha1.VerificationFailed, metav1.ConditionFalse, storagev1alpha1.ReasonVerificationFailed
		}
		meta.SetStatusCondition(&st.Conditions, cond)
		st.Verification = &storagev1alpha1.SnapshotVerification{
			LastVerifyTime: &metav1.Time{Time: time.Now()}, Message: res.Message, Request: cfg.Request, Job: cfg.Job,
		}
		return cfg.Client.Status().Update(ctx, &snap)
	})
	if err != nil {
		return fmt.Errorf("record the verification of Snapshot %s: %w", key, err)
	}
	return nil
}

// countingWriter counts what passes through to w.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// runVerify runs `keepsake run verify`, which reads and writes a Snapshot
// object and so needs --report-to kubernetes; the result goes to stdout
// as one JSON line.
func runVerify(ctx context.Context, f *runFlags, stdout, stderr io.Writer) error {
	if f.reportTo != reportKubernetes {
		return errors.New("verify records its verdict in a Snapshot object: it needs --report-to kubernetes")
	}
	c, err := f.client(stderr)
	if err != nil {
		return err
	}
	res, err := RunVerify(ctx, VerifyConfig{
		Repository: f.repositories[0], Namespace: f.namespace, Snapshot: f.snapshotObject, Client: c,
		Restic: resticBinary(f.restic), CacheDir: f.cacheDir, Job: f.job, Request: f.request,
		Locks: f.lockKeeper(nil, stderr), Driver: f.driver, NoDriver: f.noDriver, Log: stderr,
	})
	return emitResult(stdout, "verify", res, err)
}
