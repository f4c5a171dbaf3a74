// Command kubectl-keepsake is Keepsake's kubectl plugin (`kubectl keepsake
// ...`): start backups and restores, list Snapshots, describe a
// configuration, pause and resume it, and read a session's logs, without
// writing YAML. It follows kubectl's conventions: --namespace, --kubeconfig,
// --context, -o json|yaml|wide, exit code 1 on failure.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keepsake-dev/keepsake/cmd/kubectl-keepsake/internal/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := plugin.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
