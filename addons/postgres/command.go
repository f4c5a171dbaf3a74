package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// waitDelay bounds how long a finished or killed tool may keep its
// standard streams open.
const waitDelay = 5 * time.Second

// tool is one run of pg_dump, pg_dumpall or psql, with libpq's environment
// and the tail of its standard error kept for the error it ends with.
type tool struct {
	*exec.Cmd
	ctx    context.Context
	what   string // e.g. `pg_dump of database "shop"`, for messages
	stderr *tail
}

// newTool prepares name with args, connecting to database as c says.
func newTool(ctx context.Context, c conn, database, what, name string, args ...string) *tool {
	t := &tool{Cmd: exec.CommandContext(ctx, name, args...), ctx: ctx, what: what, stderr: newTail(tailLines, tailBytes)}
	t.Env = append(os.Environ(), c.env(database)...)
	t.Stderr = t.stderr
	t.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cancel = t.kill
	t.WaitDelay = waitDelay
	return t
}

// kill kills the tool's process group: Debian's /usr/bin/pg_dump is a
// wrapper script whose child must go too.
func (t *tool) kill() error {
	if t.Process == nil {
		return nil
	}
	return syscall.Kill(-t.Process.Pid, syscall.SIGKILL)
}

// start starts the tool.
func (t *tool) start() error {
	if err := t.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", t.what, t.Path, err)
	}
	return nil
}

// wait waits for the tool. Its error says how the tool ended, with the
// tail of its standard error.
func (t *tool) wait() error {
	err := t.Wait()
	if err == nil {
		return nil
	}
	if ctxErr := context.Cause(t.ctx); ctxErr != nil {
		return fmt.Errorf("%s stopped: %w", t.what, ctxErr)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return fmt.Errorf("%s: %w%s", t.what, err, t.stderr.suffix())
	}
	return fmt.Errorf("%s %s%s", t.what, describeExit(exit.ProcessState), t.stderr.suffix())
}

// run runs the tool with stdin as its input and returns its output.
func (t *tool) run(stdin io.Reader) ([]byte, error) {
	var out limitedBuffer
	t.Stdin, t.Stdout = stdin, &out
	if err := t.start(); err != nil {
		return nil, err
	}
	if err := t.wait(); err != nil {
		return nil, err
	}
	if out.overflow {
		return nil, fmt.Errorf("%s: more than %d bytes of output", t.what, maxQueryOutput)
	}
	return out.data, nil
}

// describeExit says how a process ended: "exited with status 3", "was
// killed by signal 9 (killed)".
func describeExit(ps *os.ProcessState) string {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ps.ExitCode())
}

// maxQueryOutput bounds what the driver's own queries may return.
const maxQueryOutput = 16 << 20

// limitedBuffer keeps up to maxQueryOutput bytes.
type limitedBuffer struct {
	data     []byte
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if len(b.data)+len(p) > maxQueryOutput {
		b.overflow = true
		return len(p), nil
	}
	b.data = append(b.data, p...)
	return len(p), nil
}
