// Package restic runs the restic binary against one repository: init,
// backup from a reader, dump to a writer, snapshots, forget, prune, check,
// unlock and stats. The password reaches restic only through a file and the
// storage credentials only through its process environment; nothing secret
// is logged or put in an error.
//
// restic retries a failing storage for up to 15 minutes, and a storage that
// accepts connections but never answers holds it for ever, so every call is
// bounded by its context, and every call but backup and dump (bounded by
// their session) also by its own deadline (see Deadlines). A context that
// ends kills restic; the error then matches both the context's error and,
// when restic's output says, ErrUnreachable and friends; a call that hit
// its own deadline gives a *TimeoutError.
package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Config says how to run restic for one repository.
type Config struct {
	// Binary is the path of the restic executable.
	Binary string
	// Repository is restic's repository string (see storage.ResticRepository).
	Repository string
	// PasswordFile holds the repository password (--password-file); the
	// password is never passed any other way.
	PasswordFile string
	// Env is extra KEY=VALUE environment for restic's process only, e.g.
	// the S3 credentials. It is never logged.
	Env []string
	// CacheDir is restic's --cache-dir (Jobs have a read-only root file
	// system); empty keeps restic's default.
	CacheDir string
	// ExtraArgs are global options such as --cacert, --insecure-tls or
	// -o s3.connections=N.
	ExtraArgs []string
	// RetryLock is how long a command waits for a lock another restic
	// holds (a restore while retention prunes) before it fails with
	// ErrLocked; zero fails at once.
	RetryLock time.Duration
	// Deadlines bound the commands that have no natural end; zero fields
	// take DefaultDeadlines'. RetryLock is added to them.
	Deadlines Deadlines
	// OnStorageRetry, if set, hears restic retry the storage: it is called
	// with restic's message each time a storage request failed and is
	// retried ("Save(<data/…>) returned error, retrying after 1.2s: …"),
	// and with "" each time restic says a retried request then succeeded.
	// It is called from the goroutine copying restic's standard error, and
	// must return quickly.
	OnStorageRetry func(message string)
}

// Deadlines bound the restic commands other than backup and dump.
type Deadlines struct {
	// Short bounds the commands that read little: cat, init, snapshots,
	// forget, unlock, list and stats.
	Short time.Duration
	// Long bounds the commands whose work grows with the repository:
	// prune and check.
	Long time.Duration
}

// DefaultDeadlines are the deadlines of a Config that gives none.
var DefaultDeadlines = Deadlines{Short: 10 * time.Minute, Long: 3 * time.Hour}

// longCommands are the commands Deadlines.Long bounds.
var longCommands = map[string]bool{"prune": true, "check": true}

// deadline is how long command op may take.
func (r *Repo) deadline(op string) time.Duration {
	d := r.cfg.Deadlines.Short
	if d <= 0 {
		d = DefaultDeadlines.Short
	}
	if longCommands[op] {
		if d = r.cfg.Deadlines.Long; d <= 0 {
			d = DefaultDeadlines.Long
		}
	}
	return d + r.cfg.RetryLock
}

// TimeoutError is a restic command killed at its own deadline: most often
// a storage that accepts connections and never answers. It matches
// context.DeadlineExceeded.
type TimeoutError struct {
	// Op is the restic command, e.g. "snapshots".
	Op string
	// After is the deadline it hit.
	After time.Duration
}

// Error says which command did not answer and what to look at.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("restic %s did not answer within %s: is the storage reachable?", e.Op, e.After)
}

// Is makes a TimeoutError match context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Repo runs restic against one repository. It is safe for concurrent use
// as far as restic's own locking allows.
type Repo struct {
	cfg Config
}

// New returns a Repo for cfg. It does not run restic.
func New(cfg Config) *Repo {
	return &Repo{cfg: cfg}
}

// waitDelay bounds how long a finished or killed restic may keep its output
// pipes open (through children it forked) before Wait gives up on them.
const waitDelay = 5 * time.Second

// command builds `restic <args> <global options>` with the child's
// environment. ctx kills the process (SIGKILL) when done.
func (r *Repo) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{}, args...)
	full = append(full, "--repo", r.cfg.Repository, "--password-file", r.cfg.PasswordFile)
	if r.cfg.CacheDir != "" {
		full = append(full, "--cache-dir", r.cfg.CacheDir)
	}
	if r.cfg.RetryLock > 0 {
		full = append(full, "--retry-lock", r.cfg.RetryLock.String())
	}
	full = append(full, r.cfg.ExtraArgs...)
	cmd := exec.CommandContext(ctx, r.cfg.Binary, full...)
	cmd.Env = childEnv(os.Environ(), r.cfg.Env)
	cmd.WaitDelay = waitDelay
	return cmd
}

// childEnv is the parent's environment without anything restic would take
// a password, repository or credentials from, plus extra. So the password
// can only come from the password file, and credentials only from Config.
func childEnv(parent, extra []string) []string {
	env := make([]string, 0, len(parent)+len(extra))
	for _, kv := range parent {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "RESTIC_") || strings.HasPrefix(name, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// run runs restic to completion, within its deadline, and returns its
// standard output. Failures
// are *CommandError values (see classify).
func (r *Repo) run(ctx context.Context, args ...string) ([]byte, error) {
	d := r.deadline(args[0])
	ctx, cancel := context.WithTimeoutCause(ctx, d, &TimeoutError{Op: args[0], After: d})
	defer cancel()
	var stdout bytes.Buffer
	stderr := newTailBuffer(stderrTail)
	cmd := r.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, r.stderr(stderr)
	err := cmd.Run()
	if err != nil {
		return stdout.Bytes(), r.commandError(ctx, args[0], err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// runJSON runs restic with --json and decodes its standard output into v.
func (r *Repo) runJSON(ctx context.Context, v any, args ...string) error {
	out, err := r.run(ctx, append(args, "--json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("restic %s %s: decode output: %w", args[0], r.cfg.Repository, err)
	}
	return nil
}

// commandError turns a failed run into a *CommandError, or into ctx's
// error (still matching the classified kind) when ctx ended the process.
func (r *Repo) commandError(ctx context.Context, op string, err error, stderr string) error {
	code := -1
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if ctx.Err() == nil {
		return fmt.Errorf("restic %s %s: %w", op, r.cfg.Repository, err)
	}
	cerr := &CommandError{
		Op: op, Repository: r.cfg.Repository, ExitCode: code,
		Message: lastMessage(stderr), Kind: classify(code, stderr),
	}
	if damage := damageReport(stderr); op == "check" && damage != "" {
		cerr.Message = damage // restic ends with advice; the news is before it
	}
	var timeout *TimeoutError
	if cause := context.Cause(ctx); errors.As(cause, &timeout) {
		return fmt.Errorf("%w (%w)", timeout, cerr)
	} else if cause != nil {
		return fmt.Errorf("%w: %w", cerr, cause)
	}
	return cerr
}

// stderrTail is how much of restic's standard error is kept for errors.
const stderrTail = 16 << 10

// stderr is where a command's standard error goes: into tail, for its
// errors, and through a watch for retries when OnStorageRetry is set.
func (r *Repo) stderr(tail *tailBuffer) io.Writer {
	if r.cfg.OnStorageRetry == nil {
		return tail
	}
	return io.MultiWriter(tail, &lineWriter{line: func(line []byte) {
		if msg, ok := storageRetry(string(line)); ok {
			r.cfg.OnStorageRetry(msg)
		}
	}})
}

// storageRetry reads one line of restic's standard error: a retry of a
// failed storage request gives its message, a retried request that then
// succeeded gives "" (restic 0.18: cmd/restic/global.go reports both from
// its backend's retry loop), anything else ok false.
func storageRetry(line string) (msg string, ok bool) {
	line = strings.TrimSpace(line)
	switch {
	case strings.Contains(line, " returned error, retrying after "):
		return line, true
	case strings.Contains(line, " operation successful after "):
		return "", true
	}
	return "", false
}

// tailBuffer keeps the last n bytes written to it.
type tailBuffer struct {
	n   int
	buf []byte
}

func newTailBuffer(n int) *tailBuffer { return &tailBuffer{n: n} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.n; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

var _ io.Writer = (*tailBuffer)(nil)
