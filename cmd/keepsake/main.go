// Command keepsake is Keepsake's one binary: the in-Job runtime (`keepsake
// run backup|restore|retention|forget`, `keepsake install-runtime`), the CronJobs' trigger
// (`keepsake trigger`) and the operator (`keepsake operator`). main only dispatches to a
// subcommand; each lives in its own package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keepsake-dev/keepsake/functions"
	"github.com/keepsake-dev/keepsake/operator"
)

const usage = `usage: keepsake <command> [arguments]

commands:
  operator             run the Keepsake operator
  run backup|restore|retention|forget
                       run a task in a Job: backup, restore, retention or forget
  install-runtime DIR  copy keepsake and restic into DIR (a task Job's init container)
  trigger              create a BackupSession for a session (what its CronJob runs)
  version              print the version`

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

// subcommands maps a command name to its entry point.
var subcommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"run":             functions.Main,
	"install-runtime": functions.InstallRuntime,
	"operator":        operator.Main,
	"trigger":         functions.TriggerMain,
	"version": func(_ context.Context, _ []string, stdout, _ io.Writer) error {
		_, err := fmt.Fprintln(stdout, "keepsake", version)
		return err
	},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cmd, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "keepsake: unknown command %q\n%s\n", args[0], usage)
		return 2
	}
	if err := cmd(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 2
		}
		fmt.Fprintln(stderr, "keepsake:", err)
		return 1
	}
	return 0
}
