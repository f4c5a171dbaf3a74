// Package tool runs the command-line programs a driver wraps (a
// database's dump and load tools, a user's shell command) as drivers need
// them run: in a process group of their own, which a cancelled call kills
// whole, with the end of their standard error kept for the error they end
// with. A driver's error then reads as `pg_dump of database "shop" exited
// with status 1: pg_dump: error: ...`.
package tool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// WaitDelay bounds how long a finished or killed program's leftover
// children may keep its standard streams open.
const WaitDelay = 5 * time.Second

// Cmd is one run of a program. Set its Env, Stdin and Stdout as with
// exec.Cmd; its Stderr is its Tail.
type Cmd struct {
	*exec.Cmd
	// Tail keeps the end of the program's standard error.
	Tail *Tail
	ctx  context.Context
	what string
}

// Command prepares name with args. what names the run in errors, e.g.
// `pg_dump of database "shop"` or "backup command".
func Command(ctx context.Context, what, name string, args ...string) *Cmd {
	c := &Cmd{Cmd: exec.CommandContext(ctx, name, args...), Tail: NewTail(DefaultLines, DefaultBytes), ctx: ctx, what: what}
	c.Stderr = c.Tail
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = c.Kill
	c.WaitDelay = WaitDelay
	return c
}

// Kill kills the program's process group: a shell's pipeline, or the
// program a wrapper script runs, goes with it.
func (c *Cmd) Kill() error {
	if c.Process == nil {
		return nil
	}
	return syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
}

// Start starts the program.
func (c *Cmd) Start() error {
	if err := c.Cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", c.what, c.Path, err)
	}
	return nil
}

// Wait waits for the program and kills what it left in its group. Its
// error says how the program ended, with the tail of its standard error;
// or, when the call's context ended first, that it was stopped and why.
func (c *Cmd) Wait() error {
	err := c.Cmd.Wait()
	_ = c.Kill() // children left behind
	if err == nil {
		return nil
	}
	if cause := context.Cause(c.ctx); cause != nil {
		return fmt.Errorf("%s stopped: %w", c.what, cause)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return fmt.Errorf("%s: %w%s", c.what, err, c.Tail.suffix())
	}
	return fmt.Errorf("%s %s%s", c.what, DescribeExit(exit.ProcessState), c.Tail.suffix())
}

// Run starts the program and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// DescribeExit says how a process ended: "exited with status 3", "was
// killed by signal 9 (killed)". A shell reports a child killed by signal
// N as status 128+N, which is said too.
func DescribeExit(ps *os.ProcessState) string {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		return fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	case ps.ExitCode() > 128 && ps.ExitCode() < 128+65:
		sig := syscall.Signal(ps.ExitCode() - 128)
		return fmt.Sprintf("exited with status %d (a command killed by signal %d, %s)", ps.ExitCode(), int(sig), sig)
	}
	return fmt.Sprintf("exited with status %d", ps.ExitCode())
}
