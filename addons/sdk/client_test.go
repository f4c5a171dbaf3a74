package sdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// openTestDriver starts this test binary as a driver speaking version.
func openTestDriver(t *testing.T, version int) (*Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	env := append(os.Environ(), envDriverVersion+"="+strconv.Itoa(version))
	c, err := Open(ctx, os.Args[0], WithEnv(env), WithLogOutput(io.Discard))
	if err == nil {
		t.Cleanup(c.Close)
	}
	return c, err
}

func mustOpen(t *testing.T) *Client {
	t.Helper()
	c, err := openTestDriver(t, ProtocolVersion)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return c
}

func backupReq(params map[string]string) *BackupRequest {
	return &BackupRequest{Request: Request{Params: params, Target: Target{Kind: "Service", Name: "db", Namespace: "ns"}}}
}

func sum(r io.Reader, n int64) [32]byte {
	h := sha256.New()
	if _, err := io.CopyN(h, r, n); err != nil {
		panic(err)
	}
	return [32]byte(h.Sum(nil))
}

func TestInfo(t *testing.T) {
	c := mustOpen(t)
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "test" || info.Version != "1.2.3" || len(info.Parameters) != 9 || info.Parameters[0].Default != "0" {
		t.Fatalf("info = %+v", info)
	}
}

func TestBackupStreamsExactBytes(t *testing.T) {
	c := mustOpen(t)
	const size = 40<<20 + 12345 // not a multiple of the chunk size
	h := sha256.New()
	res, err := c.Backup(context.Background(), backupReq(map[string]string{"size": strconv.Itoa(size), "seed": "7"}), h)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != size {
		t.Fatalf("got %d bytes, want %d", res.Bytes, size)
	}
	if got, want := [32]byte(h.Sum(nil)), sum(generator(7), size); got != want {
		t.Fatal("dump bytes differ from what the driver generated")
	}
}

func TestBackupFailures(t *testing.T) {
	tests := map[string]struct {
		params map[string]string // driver parameters of the failing call
		want   []string          // substrings the error must contain
		crash  bool              // the error must be a *CrashError
	}{
		"driver error": {
			params: map[string]string{"size": "3000000", "fault": "error", "fault-after": "1000000"},
			want:   []string{"driver ", "backup: disk on fire"},
		},
		"panic in Backup": {
			params: map[string]string{"size": "3000000", "fault": "panic", "fault-after": "1000000"},
			want:   []string{"driver panicked in Backup: boom in backup"},
		},
		"process crash": {
			params: map[string]string{"size": "3000000", "fault": "crash", "fault-after": "1000000"},
			want:   []string{"crashed (exit status 2): panic: crash boom"},
			crash:  true,
		},
		"unknown parameter": {
			params: map[string]string{"sise": "1"},
			want:   []string{"unknown parameters: sise"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := mustOpen(t)
			_, err := c.Backup(context.Background(), backupReq(tc.params), io.Discard)
			assertError(t, err, tc.want...)
			var crash *CrashError
			if got := errors.As(err, &crash); got != tc.crash {
				t.Fatalf("CrashError = %v, want %v (%v)", got, tc.crash, err)
			}
		})
	}
}

func assertError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not contain %q", err, w)
		}
	}
}

// blockingWriter blocks its first Write until released, to show the
// driver is held back rather than buffering its dump somewhere.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	n       int
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		close(w.started)
		<-w.release
	}
	w.n += len(p)
	return len(p), nil
}

func TestBackupBackPressureAndKill(t *testing.T) {
	c := mustOpen(t)
	w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := c.Backup(context.Background(), backupReq(map[string]string{"size": strconv.Itoa(1 << 30)}), w)
		done <- err
	}()
	<-w.started
	// Give an unthrottled driver time to race ahead; a throttled one stops
	// after the flow-control windows are full.
	time.Sleep(time.Second)
	if rss := vmHWM(t, c.Pid()); rss > 64<<20 {
		t.Errorf("driver peak RSS %d MiB while the host was blocked: the dump is being buffered", rss>>20)
	}
	if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	close(w.release)
	select {
	case err := <-done:
		assertError(t, err, "crashed (signal: killed)")
	case <-time.After(time.Minute):
		t.Fatal("Backup did not return after the driver was killed")
	}
}

// vmHWM returns the peak resident set size of process pid in bytes.
func vmHWM(t testing.TB, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func TestRestoreStreamsExactBytes(t *testing.T) {
	c := mustOpen(t)
	out := filepath.Join(t.TempDir(), "restored")
	const size = 20<<20 + 7
	req := &RestoreRequest{Request: Request{Params: map[string]string{"out": out}}}
	res, err := c.Restore(context.Background(), req, io.LimitReader(generator(3), size))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if res.Bytes != size || sum(f, size) != sum(generator(3), size) {
		t.Fatalf("restored %d bytes, or content differs", res.Bytes)
	}
	want := Restored{ObjectKind: "files", Objects: []string{"restored"}, Items: map[string]uint64{"bytes": size}}
	if !reflect.DeepEqual(res.Restored, want) {
		t.Errorf("driver said it restored %+v, want %+v", res.Restored, want)
	}
}

// TestRestoreSaysNothing: a driver that does not say what it restored (as
// drivers built before Restored) still restores, and the host sees the
// zero Restored.
func TestRestoreSaysNothing(t *testing.T) {
	c := mustOpen(t)
	req := &RestoreRequest{Request: Request{Params: map[string]string{"out": filepath.Join(t.TempDir(), "restored"), "silent": "true"}}}
	res, err := c.Restore(context.Background(), req, io.LimitReader(generator(3), 1000))
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != 1000 || !res.Restored.IsZero() {
		t.Errorf("got %d bytes and %+v, want 1000 bytes and nothing said", res.Bytes, res.Restored)
	}
}

// failingReader fails after n bytes, with err or "snapshot unreadable".
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 && r.err != nil {
		return 0, r.err
	}
	if r.n <= 0 {
		return 0, errors.New("snapshot unreadable")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestRestoreFailures(t *testing.T) {
	tests := map[string]struct {
		params map[string]string // driver parameters
		source io.Reader         // what the host streams
		want   []string          // substrings the error must contain
	}{
		"driver returns early": {
			params: map[string]string{"read-limit": "1000"},
			source: bytes.NewReader(make([]byte, 3<<20)),
			want:   []string{"before the end of the stream"},
		},
		"panic in Restore": {
			params: map[string]string{"fault": "panic"},
			source: bytes.NewReader(make([]byte, 100)),
			want:   []string{"driver panicked in Restore: boom in restore"},
		},
		"host source fails": {
			params: map[string]string{"out": "/dev/null"},
			source: &failingReader{n: 2 << 20},
			want:   []string{"read restore stream: snapshot unreadable"},
		},
		// A truncated source (e.g. a restic dump cut short) says so with
		// io.ErrUnexpectedEOF: that is a failure, not the end of the data.
		"host source truncated": {
			params: map[string]string{"out": "/dev/null"},
			source: &failingReader{n: 2<<20 + 7, err: io.ErrUnexpectedEOF},
			want:   []string{"read restore stream: unexpected EOF"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := mustOpen(t)
			_, err := c.Restore(context.Background(), &RestoreRequest{Request: Request{Params: tc.params}}, tc.source)
			assertError(t, err, tc.want...)
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the plugin's log goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDriverLogReachesHost: what a driver logs with Logger must reach the
// host's log. (go-plugin's Serve swaps os.Stderr for a pipe the host
// discards; a Logger writing to the swapped os.Stderr was silent.)
func TestDriverLogReachesHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := &syncBuffer{}
	env := append(os.Environ(), envDriverVersion+"="+strconv.Itoa(ProtocolVersion))
	c, err := Open(ctx, os.Args[0], WithEnv(env), WithLogOutput(log))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Backup(ctx, backupReq(map[string]string{"log": "hello from the driver"}), io.Discard); err != nil {
		t.Fatal(err)
	}
	c.Close() // waits for the log goroutine to drain the driver's stderr
	if got := log.String(); !strings.Contains(got, "[INFO]  driver.") || !strings.Contains(got, "hello from the driver: from=driver") {
		t.Fatalf("host log lacks the driver's line:\n%s", got)
	}
}

func TestHandshakeRefusesOtherProtocolVersion(t *testing.T) {
	_, err := openTestDriver(t, ProtocolVersion+1)
	assertError(t, err, "start driver", "incompatible API version with plugin. Plugin version: 2, Client versions: [1]")
}

func TestOpenRefusesNonPlugin(t *testing.T) {
	_, err := Open(context.Background(), "/bin/true", WithLogOutput(io.Discard))
	assertError(t, err, "start driver /bin/true")
}
