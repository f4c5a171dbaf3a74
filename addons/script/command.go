package script

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// shell runs every command, as `/bin/sh -c <command>`: the one thing the
// user's image must have besides the database's tools.
const shell = "/bin/sh"

// waitDelay bounds how long a finished or killed command's leftover
// children may keep its standard streams open.
const waitDelay = 5 * time.Second

// command is one run of a user's command in its own process group, so
// that cancelling kills the whole pipeline, not only the shell.
type command struct {
	*exec.Cmd
	ctx    context.Context
	op     string // "backup" or "restore", for messages
	stderr *tail
}

// prepare checks the command parameter and builds the run: the driver's
// environment plus the target's and the Secret's variables.
func prepare(ctx context.Context, op, line, param string, req sdk.Request) (*command, error) {
	if strings.TrimSpace(line) == "" {
		return nil, fmt.Errorf("parameter %s is empty: set the shell command to run for the %s", param, op)
	}
	env, err := commandEnv(req)
	if err != nil {
		return nil, err
	}
	c := &command{Cmd: exec.CommandContext(ctx, shell, "-c", line), ctx: ctx, op: op, stderr: newTail(tailLines, tailBytes)}
	c.Env = env
	c.Stderr = c.stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = c.killGroup
	c.WaitDelay = waitDelay
	return c, nil
}

// killGroup kills the command's process group.
func (c *command) killGroup() error {
	if c.Process == nil {
		return nil
	}
	return syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
}

// run starts the command and waits for it. Its error says how the
// command ended, with the tail of its standard error.
func (c *command) run() error {
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s command: %w", c.op, err)
	}
	err := c.Wait()
	_ = c.killGroup() // children the shell left behind
	if err == nil {
		return nil
	}
	if ctxErr := context.Cause(c.ctx); ctxErr != nil {
		return fmt.Errorf("%s command stopped: %w", c.op, ctxErr)
	}
	return c.exitError(err)
}

// exitError describes a failed run: exit status or signal, and stderr.
func (c *command) exitError(err error) error {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return fmt.Errorf("%s command: %w%s", c.op, err, c.stderr.suffix())
	}
	return fmt.Errorf("%s command %s%s", c.op, describeExit(exit.ProcessState), c.stderr.suffix())
}

// describeExit says how a process ended: "exited with status 3", "was
// killed by signal 9 (killed)". A shell reports a child killed by signal
// N as status 128+N, which is said too.
func describeExit(ps *os.ProcessState) string {
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

// envName is what a Secret key must look like to become a variable.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// commandEnv is the driver's environment, the target's KEEPSAKE_TARGET_*
// and KEEPSAKE_COMPONENT, and one variable per key of the mounted Secret.
func commandEnv(req sdk.Request) ([]string, error) {
	env := append(os.Environ(),
		"KEEPSAKE_TARGET_GROUP="+req.Target.APIGroup, "KEEPSAKE_TARGET_KIND="+req.Target.Kind,
		"KEEPSAKE_TARGET_NAME="+req.Target.Name, "KEEPSAKE_TARGET_NAMESPACE="+req.Target.Namespace,
		"KEEPSAKE_COMPONENT="+req.Component)
	dir, mounted := req.Credentials[ParamSecret]
	if !mounted {
		if name := req.Params[ParamSecret]; name != "" {
			return nil, fmt.Errorf("secret %q is set but not mounted as credential %s", name, ParamSecret)
		}
		return env, nil
	}
	vars, err := secretEnv(dir)
	if err != nil {
		return nil, fmt.Errorf("read the mounted secret %s: %w", req.Params[ParamSecret], err)
	}
	return append(env, vars...), nil
}

// secretEnv reads a mounted Secret, one file per key. Kubernetes' own
// entries (..data and the like) and keys that are no variable name are
// skipped. Values are never logged.
func secretEnv(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, e := range entries {
		if !envName.MatchString(e.Name()) {
			continue
		}
		value, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", e.Name(), err)
		}
		env = append(env, e.Name()+"="+string(value))
	}
	return env, nil
}
