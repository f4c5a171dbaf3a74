// Package script is the script addon's driver: a backup is whatever a
// user's command writes to its standard output, run in any image with the
// database's own tools (e.g. `redis-cli --rdb -`, `mariadb-dump`); a
// restore pipes the snapshot into a restore command's standard input.
package script

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// Parameter names, shared by the driver's Info and the Addon manifest.
const (
	ParamBackupCommand  = "backupCommand"
	ParamRestoreCommand = "restoreCommand"
	ParamSecret         = "secret"
)

var parameters = []sdk.Parameter{
	{Name: ParamBackupCommand, Usage: "backup: shell command (/bin/sh -c) that writes the dump to its standard output"},
	{Name: ParamRestoreCommand, Usage: "restore: shell command (/bin/sh -c) that reads the dump from its standard input"},
	{Name: ParamSecret, Usage: "Secret whose keys become environment variables of the commands, mounted as credential secret"},
}

// Driver runs the user's commands.
type Driver struct{}

var _ sdk.Driver = Driver{}

// Info implements sdk.Driver.
func (Driver) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:         "script",
		Version:      "0.1.0",
		Parameters:   parameters,
		Capabilities: []sdk.Capability{sdk.CapabilityBackup, sdk.CapabilityRestore},
	}, nil
}

// Backup implements sdk.Driver: the command's standard output is the dump.
// A command that fails, is killed, or writes nothing fails the backup.
func (Driver) Backup(ctx context.Context, req *sdk.BackupRequest, w io.Writer) error {
	cmd, err := prepare(ctx, "backup", req.Params[ParamBackupCommand], ParamBackupCommand, req.Request)
	if err != nil {
		return err
	}
	out := &countingWriter{w: w, onError: cmd.Kill}
	cmd.Stdout = out
	runErr := cmd.Run()
	switch {
	case runErr != nil:
		return runErr
	case out.err != nil:
		return fmt.Errorf("send the backup command's output: %w", out.err)
	case out.n == 0:
		return errors.New("backup command wrote nothing to its standard output: a dump is never empty; check the command")
	}
	return nil
}

// Restore implements sdk.Driver: the command reads the dump on its standard
// input and must read all of it. A command says nothing of what it
// restored, so neither does the driver.
func (Driver) Restore(ctx context.Context, req *sdk.RestoreRequest, r io.Reader) (sdk.Restored, error) {
	cmd, err := prepare(ctx, "restore", req.Params[ParamRestoreCommand], ParamRestoreCommand, req.Request)
	if err != nil {
		return sdk.Restored{}, err
	}
	in := &countingReader{r: r, onError: cmd.Kill}
	cmd.Stdin = in
	runErr := cmd.Run()
	switch {
	case in.err != nil && !errors.Is(in.err, io.EOF):
		return sdk.Restored{}, fmt.Errorf("read the snapshot: %w", in.err)
	case runErr != nil:
		return sdk.Restored{}, runErr
	case !in.eof:
		return sdk.Restored{}, fmt.Errorf("restore command exited after reading %d bytes, before the end of the snapshot: it must read all of its standard input", in.n)
	}
	return sdk.Restored{}, nil
}

// countingWriter counts what reaches w and keeps w's first error, on
// which it calls onError: a command whose output goes nowhere is killed
// rather than left blocked on a full pipe.
type countingWriter struct {
	w       io.Writer
	n       int64
	err     error
	onError func() error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
		_ = c.onError()
	}
	return n, err
}

// countingReader counts what is read from r and remembers how it ended.
// On a read error it calls onError before returning: the command is killed
// before it sees its input close, which it would take for the end of a
// complete dump and load what it has.
type countingReader struct {
	r       io.Reader
	n       int64
	eof     bool
	err     error
	onError func() error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if errors.Is(err, io.EOF) {
		c.eof = true
	} else if err != nil && c.err == nil {
		c.err = err
		_ = c.onError()
	}
	return n, err
}
