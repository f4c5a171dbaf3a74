package sdktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/addons/sdk/internal/calls"
)

// Options say how Conformance runs a driver.
type Options struct {
	// Open are the options of sdk.Open, e.g. sdk.WithEnv.
	Open []sdk.Option
	// Backup is a request that backs up successfully. Required: the
	// restore checks restore its dump.
	Backup *sdk.BackupRequest
	// FailingBackup is a request whose Backup fails in the driver, e.g.
	// one naming a database that does not exist. Required when the driver
	// can back up.
	FailingBackup *sdk.BackupRequest
	// CancelBackup is a request whose Backup is still running when its
	// first bytes reach the host: a dump larger than the SDK's flow-control
	// windows (16 MiB is plenty), or a slow one. Backup when nil.
	CancelBackup *sdk.BackupRequest
	// Restore is a request that loads the dump of Backup. Required when
	// the driver can restore.
	Restore *sdk.RestoreRequest
	// Restored is what the driver must say the Restore of Restore loaded,
	// e.g. the databases and points of the dump; not compared when nil
	// (what the driver says is still checked for form).
	Restored *sdk.Restored
	// Counts are what the driver's Backup of Backup must say its dump
	// holds (sdk.BackupRequest.SetCounts), e.g. the points and series of
	// the dataset; not compared when nil (what it says is still checked
	// for form, and against Verify).
	Counts sdk.Counts
	// BeforeRestore, when set, runs before each restore, e.g. to empty the
	// database the dump was taken from.
	BeforeRestore func(t testing.TB)
	// Timeout bounds each call; 5 minutes when zero.
	Timeout time.Duration
}

// Conformance runs the checks every driver must pass, each on its own
// driver process started from binary as the runtime starts it:
//
//   - Info is valid: a name, a version, known capabilities, parameters
//     with unique names, a usage each, no required parameter with a
//     default; and the same answer twice.
//   - Backup into a pipe: a complete dump, every byte through the pipe;
//     its counts are well formed (CheckCounts) and equal Options.Counts
//     when that is set.
//   - Verify counts the dump as Backup did, for a driver with capability
//     verify (a Verifier): every byte read, the same counts; any other
//     driver answers Verify with sdk.ErrNoVerify.
//   - An error in Backup yields no stream end: the call fails (the host
//     saw no end marker), with the driver's message rather than a crash.
//   - Restore reads to EOF: the dump of Backup restores, every byte read,
//     and what the driver says it restored is well formed (CheckRestored)
//     and equals Options.Restored when that is set.
//   - A cancelled context stops Backup, and one stops Restore: the call
//     fails, the driver's method returns (its log says so) within 30 s,
//     and the driver still answers Info.
func Conformance(t *testing.T, binary string, opts Options) {
	t.Helper()
	if opts.Backup == nil {
		t.Fatal("sdktest.Options.Backup is required")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.CancelBackup == nil {
		opts.CancelBackup = opts.Backup
	}
	c := conformance{binary: binary, opts: opts, stopLimit: StopLimit}
	var info sdk.Info
	t.Run("Info is valid", func(t *testing.T) { info = c.info(t) })
	var dump Dump
	dir := t.TempDir() // the dump outlives the subtest that makes it
	t.Run("Backup into a pipe", func(t *testing.T) {
		var err error
		if dump, err = c.backup(t, dir); err != nil {
			t.Error(err)
		}
	})
	if dump.Path != "" {
		t.Run("Verify counts the dump as Backup did", func(t *testing.T) {
			c.check(t, func(t testing.TB) error {
				return c.verify(t, dump, slices.Contains(info.Capabilities, sdk.CapabilityVerify))
			})
		})
	}
	if slices.Contains(info.Capabilities, sdk.CapabilityBackup) {
		t.Run("An error in Backup yields no stream end", func(t *testing.T) { c.check(t, c.failingBackup) })
		t.Run("A cancelled context stops Backup", func(t *testing.T) { c.check(t, c.cancelBackup) })
	}
	if !slices.Contains(info.Capabilities, sdk.CapabilityRestore) || dump.Path == "" {
		return
	}
	if opts.Restore == nil {
		t.Fatal("sdktest.Options.Restore is required for a driver that can restore")
	}
	t.Run("Restore reads to EOF", func(t *testing.T) { c.check(t, func(t testing.TB) error { return c.restore(t, dump) }) })
	t.Run("A cancelled context stops Restore", func(t *testing.T) {
		c.check(t, func(t testing.TB) error { return c.cancelRestore(t, dump) })
	})
}

// conformance holds the settings of one Conformance run.
type conformance struct {
	binary string
	opts   Options
	// stopLimit bounds the wait for a cancelled call to return.
	stopLimit time.Duration
}

func (c conformance) start(t testing.TB) *Driver {
	t.Helper()
	return Start(t, c.binary, c.opts.Open...)
}

func (c conformance) ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func (c conformance) check(t *testing.T, check func(testing.TB) error) {
	t.Helper()
	if err := check(t); err != nil {
		t.Error(err)
	}
}

// info asks a fresh driver twice and checks the answer.
func (c conformance) info(t *testing.T) sdk.Info {
	d := c.start(t)
	first, err := d.Client.Info(c.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckInfo(first); err != nil {
		t.Error(err)
	}
	second, err := d.Client.Info(c.ctx(t))
	if err != nil || !reflect.DeepEqual(first, second) {
		t.Errorf("Info answered %+v, then %+v (%v): it must describe the driver the same way every time", first, second, err)
	}
	return first
}

// CheckInfo reports what is wrong with a driver's Info, or nil.
func CheckInfo(info sdk.Info) error {
	var problems []error
	if info.Name == "" || info.Version == "" {
		problems = append(problems, fmt.Errorf("name %q and version %q must both be set", info.Name, info.Version))
	}
	if len(info.Capabilities) == 0 {
		problems = append(problems, errors.New("no capabilities: a driver backs up, restores or both"))
	}
	for _, capability := range info.Capabilities {
		if !slices.Contains([]sdk.Capability{sdk.CapabilityBackup, sdk.CapabilityRestore, sdk.CapabilityVerify}, capability) {
			problems = append(problems, fmt.Errorf("unknown capability %q", capability))
		}
	}
	seen := map[string]bool{}
	for _, p := range info.Parameters {
		switch {
		case p.Name == "":
			problems = append(problems, errors.New("a parameter has no name"))
		case seen[p.Name]:
			problems = append(problems, fmt.Errorf("parameter %s is declared twice", p.Name))
		case p.Usage == "":
			problems = append(problems, fmt.Errorf("parameter %s has no usage", p.Name))
		case p.Required && p.Default != "":
			problems = append(problems, fmt.Errorf("parameter %s is required and has default %q, which is never used", p.Name, p.Default))
		}
		seen[p.Name] = true
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("invalid Info: %w", err)
	}
	return nil
}

// backup backs up opts.Backup into dir and checks every byte went through
// the pipe.
func (c conformance) backup(t testing.TB, dir string) (Dump, error) {
	d := c.start(t)
	dump, err := backupToFile(c.ctx(t), d.Client, c.opts.Backup, filepath.Join(dir, "dump"))
	if err != nil {
		return dump, fmt.Errorf("backup: %w", err)
	}
	st, err := os.Stat(dump.Path)
	if err != nil {
		return dump, err
	}
	if uint64(st.Size()) != dump.Bytes {
		return dump, fmt.Errorf("the host received %d bytes but %d came out of the pipe", dump.Bytes, st.Size())
	}
	if err := CheckCounts(dump.Counts); err != nil {
		return dump, err
	}
	if want := c.opts.Counts; want != nil && !maps.Equal(dump.Counts, want) {
		return dump, fmt.Errorf("the driver's Backup says its dump holds %v, want %v", dump.Counts, want)
	}
	return dump, nil
}

// CheckCounts reports what is wrong with the counts a driver reported, or
// nil. No counts are valid: the driver does not say.
func CheckCounts(counts sdk.Counts) error {
	var problems []error
	for unit := range counts {
		if !isUnit(unit) {
			problems = append(problems, fmt.Errorf("count unit %q must be one lower-case word, e.g. \"points\"", unit))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("invalid Counts: %w", err)
	}
	return nil
}

// verify verifies dump: a Verifier must read all of it and count what its
// Backup counted; any other driver must answer with sdk.ErrNoVerify.
func (c conformance) verify(t testing.TB, dump Dump, verifier bool) error {
	d := c.start(t)
	res, err := Verify(c.ctx(t), t, d.Client, &sdk.VerifyRequest{Request: sdk.Request{Component: "dump"}}, dump)
	switch {
	case !verifier && errors.Is(err, sdk.ErrNoVerify):
		return nil
	case !verifier:
		return fmt.Errorf("Verify of a driver without capability verify answered %v, want sdk.ErrNoVerify", err)
	case err != nil:
		return fmt.Errorf("verify: %w", err)
	case res.Bytes != dump.Bytes:
		return fmt.Errorf("verify read %d bytes of a %d-byte dump", res.Bytes, dump.Bytes)
	case !maps.Equal(res.Counts, dump.Counts):
		return fmt.Errorf("Verify counted %v in the dump, but its Backup said %v: both must count the same", res.Counts, dump.Counts)
	}
	return nil
}

// failingBackup checks opts.FailingBackup fails with the driver's own error.
func (c conformance) failingBackup(t testing.TB) error {
	if c.opts.FailingBackup == nil {
		return errors.New("sdktest.Options.FailingBackup is required for a driver that can back up")
	}
	d := c.start(t)
	dump, err := Backup(c.ctx(t), t, d.Client, c.opts.FailingBackup)
	var crash *sdk.CrashError
	switch {
	case err == nil:
		return fmt.Errorf("the failing backup succeeded with a %d-byte dump: a Backup that fails must return its error, "+
			"so that the stream has no end marker and no snapshot is made", dump.Bytes)
	case errors.As(err, &crash):
		return fmt.Errorf("the failing backup crashed the driver instead of returning an error: %w", err)
	}
	return nil
}

// cancelBackup cancels a backup once its first bytes reach the pipe.
func (c conformance) cancelBackup(t testing.TB) error {
	d := c.start(t)
	ctx, cancel := context.WithCancel(c.ctx(t))
	defer cancel()
	_, err := backupInto(ctx, d.Client, c.opts.CancelBackup, cancelOnWrite{cancel: cancel})
	if err == nil {
		return errors.New("a backup cancelled after its first bytes succeeded")
	}
	if err := d.Log.WaitReturnedAfterCancel("Backup", c.stopLimit); err != nil {
		return fmt.Errorf("%w: it must stop when its context is cancelled "+
			"(or Options.CancelBackup finished before the cancellation reached it: give it a larger or slower dump)", err)
	}
	return c.stillAnswers(t, d)
}

// cancelOnWrite cancels on the first bytes and discards everything.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (w cancelOnWrite) Write(p []byte) (int, error) {
	w.cancel()
	return len(p), nil
}

// restore restores dump and checks the driver read all of it and says
// what it restored.
func (c conformance) restore(t testing.TB, dump Dump) error {
	c.beforeRestore(t)
	d := c.start(t)
	res, err := Restore(c.ctx(t), t, d.Client, c.opts.Restore, dump)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if res.Bytes != dump.Bytes {
		return fmt.Errorf("restore read %d bytes of a %d-byte dump", res.Bytes, dump.Bytes)
	}
	if err := CheckRestored(res.Restored); err != nil {
		return err
	}
	if want := c.opts.Restored; want != nil && !sameRestored(res.Restored, *want) {
		return fmt.Errorf("the driver says it restored %s, want %s", formatRestored(res.Restored), formatRestored(*want))
	}
	return nil
}

// CheckRestored reports what is wrong with what a driver says it
// restored, or nil. The zero Restored is valid: the driver does not say.
func CheckRestored(r sdk.Restored) error {
	var problems []error
	if len(r.Objects) > 0 && r.ObjectKind == "" {
		problems = append(problems, errors.New("objects without an object kind: say what they are, e.g. \"databases\""))
	}
	if r.ObjectKind != "" && !isUnit(r.ObjectKind) {
		problems = append(problems, fmt.Errorf("object kind %q must be one lower-case word, e.g. \"databases\"", r.ObjectKind))
	}
	seen := map[string]bool{}
	for _, o := range r.Objects {
		if o == "" || seen[o] {
			problems = append(problems, fmt.Errorf("object name %q is empty or repeated", o))
		}
		seen[o] = true
	}
	for unit := range r.Items {
		if !isUnit(unit) {
			problems = append(problems, fmt.Errorf("item unit %q must be one lower-case word, e.g. \"points\"", unit))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("invalid Restored: %w", err)
	}
	return nil
}

// isUnit reports whether s is a lower-case word, as units and kinds are
// shown after a count ("3 databases").
func isUnit(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '-' {
			return false
		}
	}
	return true
}

// sameRestored compares two Restored, objects in any order.
func sameRestored(a, b sdk.Restored) bool {
	return a.ObjectKind == b.ObjectKind && maps.Equal(a.Items, b.Items) &&
		slices.Equal(slices.Sorted(slices.Values(a.Objects)), slices.Sorted(slices.Values(b.Objects)))
}

func formatRestored(r sdk.Restored) string {
	return fmt.Sprintf("%s %q, items %v", r.ObjectKind, r.Objects, r.Items)
}

// cancelRestore feeds half of dump, then cancels the call as a killed
// restic would end it, and waits for the driver to stop.
func (c conformance) cancelRestore(t testing.TB, dump Dump) error {
	c.beforeRestore(t)
	d := c.start(t)
	f, err := os.Open(dump.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(c.ctx(t))
	defer cancel()
	started := make(chan struct{})
	ctx = calls.WithStarted(ctx, func() { close(started) })
	half := max(int64(dump.Bytes/2), 1)
	src := io.MultiReader(io.LimitReader(f, half), cancelOnRead{ctx: ctx, cancel: cancel, started: started})
	if _, err := restoreFrom(ctx, d.Client, c.opts.Restore, src); err == nil {
		return errors.New("a restore cancelled halfway succeeded")
	}
	if err := d.Log.WaitReturnedAfterCancel("Restore", c.stopLimit); err != nil {
		return fmt.Errorf("%w: it must stop when its context is cancelled", err)
	}
	return c.stillAnswers(t, d)
}

// cancelOnRead cancels on its first read, once the driver's Restore has
// begun, and fails the read once the cancellation is done.
type cancelOnRead struct {
	ctx     context.Context
	cancel  context.CancelFunc
	started chan struct{}
}

func (r cancelOnRead) Read([]byte) (int, error) {
	select {
	case <-r.started:
	case <-r.ctx.Done():
	}
	r.cancel()
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func (c conformance) beforeRestore(t testing.TB) {
	if c.opts.BeforeRestore != nil {
		c.opts.BeforeRestore(t)
	}
}

// stillAnswers checks the driver serves calls after a cancellation.
func (c conformance) stillAnswers(t testing.TB, d *Driver) error {
	if _, err := d.Client.Info(c.ctx(t)); err != nil {
		return fmt.Errorf("after the cancellation the driver no longer answers Info: %w", err)
	}
	return nil
}
