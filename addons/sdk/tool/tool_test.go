package tool

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTail checks what a failure quotes: the last lines, bounded in bytes,
// or the lines from the first error on.
func TestTail(t *testing.T) {
	cases := map[string]struct {
		tail  *Tail
		input string
		want  string
	}{
		"last lines":         {NewTail(2, 100), "one\n\ntwo\nthree\nfour", "three | four"},
		"bytes from the end": {NewTail(10, 8), "aaaa\nbbbb\ncccc\n", "...b | cccc"},
		"nothing":            {NewTail(10, 100), "\n  \n", ""},
		"from the first error": {NewTail(2, 100).FromFirst("ERROR:"),
			"notice 1\nERROR: relation x does not exist\nSTATEMENT: SELECT 1\nlater\n", "ERROR: relation x does not exist | STATEMENT: SELECT 1"},
		"error bytes from the start": {NewTail(10, 10).FromFirst("pg_dump:"), "pg_dump: error: a long message\nmore\n", "pg_dump: e..."},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for _, b := range []byte(tc.input) { // one byte a write, as a pipe may deliver it
				if _, err := tc.tail.Write([]byte{b}); err != nil {
					t.Fatal(err)
				}
			}
			if got := tc.tail.String(); got != tc.want {
				t.Errorf("tail = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCommandSaysHowItEnded runs real processes: the error names the run,
// its exit or signal, and its standard error.
func TestCommandSaysHowItEnded(t *testing.T) {
	cases := map[string]struct{ script, want string }{
		"exit status":       {"echo first >&2; echo 'fatal: no such table' >&2; exit 3", "dump of x exited with status 3: first | fatal: no such table"},
		"killed":            {"kill -9 $$", "dump of x was killed by signal 9 (killed)"},
		"a child killed":    {"sh -c 'kill -15 $$'", "exited with status 143 (a command killed by signal 15, terminated)"},
		"silent":            {"exit 1", "exited with status 1: (no output on standard error)"},
		"success says none": {"echo fine >&2", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := Command(context.Background(), "dump of x", "/bin/sh", "-c", tc.script).Run()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
	if err := Command(context.Background(), "dump of x", "/no/such/program").Run(); err == nil ||
		!strings.Contains(err.Error(), "dump of x: start /no/such/program") {
		t.Errorf("a missing program: %v", err)
	}
}

// TestCancelKillsTheGroup checks that a cancelled call stops the whole
// pipeline, the shell's children included, and says why.
func TestCancelKillsTheGroup(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	pidFile := t.TempDir() + "/child"
	c := Command(ctx, "backup command", "/bin/sh", "-c", "sleep 300 & echo $! > "+pidFile+"; wait")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var child int
	for deadline := time.Now().Add(time.Minute); child == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if child == 0 {
		t.Fatal("the shell never started its child")
	}
	cancel(errors.New("the session was cancelled"))
	err := c.Wait()
	if err == nil || !strings.Contains(err.Error(), "backup command stopped: the session was cancelled") {
		t.Errorf("err = %v, want it stopped with the cause", err)
	}
	// The child is gone (or a zombie of init's, about to be reaped).
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(child, 0); errors.Is(err, syscall.ESRCH) || zombie(child) {
			return
		}
	}
	t.Errorf("child %d still runs after the cancel", child)
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] == "Z"
}
