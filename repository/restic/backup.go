package restic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// BackupOptions describe the snapshot Backup makes.
type BackupOptions struct {
	// Filename is the file's name in the snapshot (--stdin-filename).
	Filename string
	// Host is the snapshot's host name; empty uses this machine's.
	Host string
	// Tags are added to the snapshot.
	Tags []string
	// Time is the snapshot's time; zero means now.
	Time time.Time
	// ProgressInterval is the least time between progress callbacks; zero
	// means one second.
	ProgressInterval time.Duration
}

// Progress is restic's report on a running backup.
type Progress struct {
	// BytesDone is how much of the input restic has processed.
	BytesDone uint64
	// SecondsElapsed is the time since restic started the backup.
	SecondsElapsed float64
}

// BackupSummary is restic's report on a finished backup.
type BackupSummary struct {
	// SnapshotID is the new snapshot's full ID.
	SnapshotID string
	// TotalBytesProcessed is the size of the input.
	TotalBytesProcessed uint64
	// DataAdded is how much new data (before compression) was stored;
	// DataAddedPacked is its stored, compressed size.
	DataAdded, DataAddedPacked uint64
	// Duration is how long restic took.
	Duration time.Duration
}

// feedBufferSize is how much Backup reads from the source at a time.
const feedBufferSize = 512 << 10

// Backup stores everything src yields until EOF as file opts.Filename of a
// new snapshot (`restic backup --stdin`). progress, if not nil, is called
// at most every opts.ProgressInterval from another goroutine, and should
// return quickly.
//
// Only a complete input becomes a snapshot: when src returns an error other
// than io.EOF, or ctx ends, restic is killed before its input is closed, so
// it never sees EOF, and Backup returns src's error (or ctx's). After a
// source error Backup removes the killed restic's lock; after ctx ends it
// does not (it returns at once): call Unlock before the next exclusive
// operation. When ctx ends while src.Read blocks, a goroutine keeps waiting
// for that Read; whatever it returns is discarded. An empty source gives an
// error wrapping ErrEmptyInput.
func (r *Repo) Backup(ctx context.Context, src io.Reader, opts BackupOptions, progress func(Progress)) (*BackupSummary, error) {
	if opts.Filename == "" {
		return nil, errors.New("restic backup: no file name for the input")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("restic backup %s: %w", opts.Filename, err)
	}
	growPipe(pw)
	interval := opts.ProgressInterval
	if interval <= 0 {
		interval = time.Second
	}
	out := newBackupOutput(progress, interval)
	stderr := newTailBuffer(stderrTail)
	cmd := r.command(ctx, backupArgs(opts)...)
	cmd.Env = append(cmd.Env, "RESTIC_PROGRESS_FPS="+progressFPS(interval))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, out, r.stderr(stderr)
	err = cmd.Start()
	_ = pr.Close() // restic holds its own copy now
	if err != nil {
		_ = pw.Close()
		return nil, fmt.Errorf("restic backup %s: %w", opts.Filename, err)
	}
	if err := r.feedAndWait(ctx, cmd, src, pw, stderr); err != nil {
		return nil, err
	}
	if out.summary == nil {
		return nil, fmt.Errorf("restic backup %s: no summary in restic's output", r.cfg.Repository)
	}
	return out.summary, nil
}

// readError is a failure of the backup's source.
type readError struct{ err error }

func (e *readError) Error() string { return "read backup source: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// ErrEmptyInput: Backup's source ended without a byte. restic 0.18 refuses
// to store an empty stdin, so there is no snapshot of it.
var ErrEmptyInput = errors.New("backup source is empty")

// feed copies src into restic's stdin until src ends. It returns nil at
// EOF, a *readError when src fails or is empty, and the write error when
// restic stops reading. It never closes w: closing is what tells restic the
// input is complete, and that is the caller's decision.
func feed(w io.Writer, src io.Reader) error {
	buf := make([]byte, feedBufferSize)
	empty := true
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			empty = false
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if rerr == io.EOF && empty {
			return &readError{ErrEmptyInput}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return &readError{rerr}
		}
	}
}

// feedAndWait runs feed and waits for restic. Only a clean EOF with ctx
// alive closes stdin; on every other path restic is killed first.
func (r *Repo) feedAndWait(ctx context.Context, cmd *exec.Cmd, src io.Reader, stdin *os.File, stderr *tailBuffer) error {
	fed := make(chan error, 1)
	go func() { fed <- feed(stdin, src) }()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited: // restic quit before the input ended: a failure
		_ = stdin.Close()
		if err == nil {
			err = errors.New("restic exited before the end of its input")
		}
		return r.commandError(ctx, "backup", err, stderr.String())
	case err := <-fed:
		return r.finishBackup(ctx, cmd, err, stdin, exited, stderr)
	}
}

// finishBackup ends a backup whose feeding stopped with err: nil at the end
// of the input, a *readError when the source failed, or the error writing
// to restic, which stopped reading.
func (r *Repo) finishBackup(ctx context.Context, cmd *exec.Cmd, err error, stdin *os.File, exited <-chan error, stderr *tailBuffer) error {
	var rerr *readError
	switch {
	case err == nil && ctx.Err() == nil:
		_ = stdin.Close() // the input is complete: let restic finish
		err = <-exited
	case err == nil || errors.As(err, &rerr):
		_ = cmd.Process.Kill() // before restic can see EOF
		<-exited
		_ = stdin.Close()
		if rerr == nil {
			return fmt.Errorf("restic backup %s: %w", r.cfg.Repository, context.Cause(ctx))
		}
		r.removeStaleLocks(ctx)
		return fmt.Errorf("restic backup %s: %w", r.cfg.Repository, rerr)
	default:
		werr := <-exited
		_ = stdin.Close()
		if err = werr; err == nil {
			err = errors.New("restic stopped reading its input")
		}
	}
	if err != nil {
		return r.commandError(ctx, "backup", err, stderr.String())
	}
	return nil
}

// unlockTimeout bounds the clean-up after a killed backup.
const unlockTimeout = 15 * time.Second

// removeStaleLocks removes the lock a killed restic left behind (stale: its
// process is gone from this host), so that exclusive operations such as
// prune and check need not wait 30 minutes for it. Best effort: a failure
// is left to the next Unlock.
func (r *Repo) removeStaleLocks(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, unlockTimeout)
	defer cancel()
	_, _ = r.run(ctx, "unlock")
}

// backupArgs builds the restic backup command line.
func backupArgs(opts BackupOptions) []string {
	args := []string{"backup", "--stdin", "--stdin-filename", opts.Filename, "--json"}
	if opts.Host != "" {
		args = append(args, "--host", opts.Host)
	}
	for _, t := range opts.Tags {
		args = append(args, "--tag", t)
	}
	if !opts.Time.IsZero() {
		// restic reads --time in the local time zone.
		args = append(args, "--time", opts.Time.Local().Format(time.DateTime))
	}
	return args
}

// progressFPS is how often restic prints status lines: twice per callback
// interval, so that each callback sees fresh numbers.
func progressFPS(interval time.Duration) string {
	return strconv.FormatFloat(2/interval.Seconds(), 'f', -1, 64)
}
