// Package sdktest tests a driver binary the way Keepsake's runtime runs
// it: it starts the binary as a go-plugin process (sdk.Open, exactly the
// runtime's call), backs up into a pipe, as the runtime feeds restic's
// standard input, and restores from a pipe, as the runtime feeds restic's
// dump to the driver. Conformance runs the checks every driver must pass.
//
// A driver's own tests use it like this:
//
//	func TestDriver(t *testing.T) {
//		bin := buildDriver(t) // go build -o ... ./cmd/mydb-driver
//		d := sdktest.Start(t, bin)
//		dump, err := sdktest.Backup(context.Background(), t, d.Client, backupReq)
//		...
//		_, err = sdktest.Restore(context.Background(), t, d.Client, restoreReq, dump)
//		...
//	}
package sdktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/addons/sdk/internal/calls"
)

// Driver is a running driver process with its log.
type Driver struct {
	// Client is the runtime's handle on the process.
	Client *sdk.Client
	// Log holds the driver's log lines as the runtime logs them.
	Log *Log
}

// Start starts the driver binary at path as the runtime does and closes it
// when the test ends. The driver's log is kept in Driver.Log and printed
// if the test fails.
func Start(t testing.TB, path string, opts ...sdk.Option) *Driver {
	t.Helper()
	d, err := start(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Client.Close()
		if t.Failed() {
			t.Logf("log of driver %s:\n%s", filepath.Base(path), d.Log.String())
		}
	})
	return d
}

func start(path string, opts ...sdk.Option) (*Driver, error) {
	log := &Log{}
	opts = append([]sdk.Option{sdk.WithLogOutput(log)}, opts...)
	c, err := sdk.Open(context.Background(), path, opts...)
	if err != nil {
		return nil, err
	}
	return &Driver{Client: c, Log: log}, nil
}

// Dump is a backup as the repository would store it: a file.
type Dump struct {
	// Path of the file holding the dump.
	Path string
	// Bytes is the dump's size.
	Bytes uint64
	// Counts are what the driver's Backup said the dump holds; nil when
	// it said nothing.
	Counts sdk.Counts
}

// Backup runs req and writes the dump through a pipe into a file in a
// temporary directory of t. It returns the dump and the driver's error:
// on error the dump is what a broken stream left and must not be used.
func Backup(ctx context.Context, t testing.TB, c *sdk.Client, req *sdk.BackupRequest) (Dump, error) {
	t.Helper()
	return backupToFile(ctx, c, req, filepath.Join(t.TempDir(), "dump"))
}

func backupToFile(ctx context.Context, c *sdk.Client, req *sdk.BackupRequest, path string) (Dump, error) {
	f, err := os.Create(path)
	if err != nil {
		return Dump{}, err
	}
	defer f.Close()
	res, err := backupInto(ctx, c, req, f)
	return Dump{Path: path, Bytes: res.Bytes, Counts: res.Counts}, err
}

// backupInto runs a backup into w through an os.Pipe.
func backupInto(ctx context.Context, c *sdk.Client, req *sdk.BackupRequest, w io.Writer) (sdk.BackupResult, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return sdk.BackupResult{}, err
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, pr)
		pr.Close()
		copied <- err
	}()
	res, err := c.Backup(ctx, req, pw)
	pw.Close()
	if cerr := <-copied; err == nil && cerr != nil {
		err = fmt.Errorf("copy dump out of the pipe: %w", cerr)
	}
	return res, err
}

// Restore streams dump through a pipe into req's Restore and returns the
// bytes the driver read, what it says it restored, and its error.
func Restore(ctx context.Context, t testing.TB, c *sdk.Client, req *sdk.RestoreRequest, dump Dump) (sdk.RestoreResult, error) {
	t.Helper()
	return fromFile(t, dump, func(r io.Reader) (sdk.RestoreResult, error) { return restoreFrom(ctx, c, req, r) })
}

// Verify streams dump through a pipe into req's Verify, as the runtime
// streams a stored dump, and returns the bytes the driver read, what it
// counted, and its error (wrapping sdk.ErrNoVerify for a driver that
// cannot verify).
func Verify(ctx context.Context, t testing.TB, c *sdk.Client, req *sdk.VerifyRequest, dump Dump) (sdk.VerifyResult, error) {
	t.Helper()
	return fromFile(t, dump, func(r io.Reader) (sdk.VerifyResult, error) {
		return throughPipe(r, func(src io.Reader) (sdk.VerifyResult, error) { return c.Verify(ctx, req, src) })
	})
}

// fromFile opens dump's file for call.
func fromFile[T any](t testing.TB, dump Dump, call func(io.Reader) (T, error)) (T, error) {
	t.Helper()
	f, err := os.Open(dump.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return call(f)
}

// restoreFrom feeds r to the driver's Restore through an os.Pipe.
func restoreFrom(ctx context.Context, c *sdk.Client, req *sdk.RestoreRequest, r io.Reader) (sdk.RestoreResult, error) {
	return throughPipe(r, func(src io.Reader) (sdk.RestoreResult, error) { return c.Restore(ctx, req, src) })
}

// throughPipe copies r into an os.Pipe and gives call the pipe's end, as
// the runtime gives a driver restic's output.
func throughPipe[T any](r io.Reader, call func(io.Reader) (T, error)) (T, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		var zero T
		return zero, err
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(pw, r)
		pw.Close()
		copied <- err
	}()
	res, err := call(&pipeSource{r: pr, copied: copied})
	pr.Close()
	return res, err
}

// pipeSource reads the pipe's end and turns a failed copy into the pipe
// into a read error: the closed pipe alone would look like a clean end.
type pipeSource struct {
	r      *os.File
	copied chan error
	err    error
}

// Read implements io.Reader.
func (p *pipeSource) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.r.Read(b)
	if errors.Is(err, io.EOF) {
		if cerr := <-p.copied; cerr != nil {
			err = fmt.Errorf("copy dump into the pipe: %w", cerr)
		}
		p.err = err
	}
	return n, err
}

// Log collects a driver's log lines; it is safe for concurrent use.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns the log so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// StopLimit is how long Conformance lets a cancelled call take to return
// in the driver process: generous, as cleaning up (killing a child,
// closing a connection) can take a moment on a loaded machine.
const StopLimit = 30 * time.Second

// WaitReturnedAfterCancel waits until the driver logged that its cancelled
// method (Backup or Restore) returned, and fails after limit. The host
// gives up on a cancelled call at once, so only the driver's own log shows
// that it stopped working.
func (l *Log) WaitReturnedAfterCancel(method string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if l.returned(method) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the driver's %s did not return within %s of the cancellation", method, limit)
}

func (l *Log) returned(method string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, calls.ReturnedAfterCancel) && strings.Contains(line, "method="+method) {
			return true
		}
	}
	return false
}
