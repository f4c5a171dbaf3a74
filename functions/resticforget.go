package functions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/keepsake-dev/keepsake/repository/restic"
)

// forgetSnapshots runs `restic forget <ids>`. It belongs in
// repository/restic (Repo.Forget only takes a policy) and should move there
// as a Repo method; until then it runs restic the way that package does:
// the password from the file only, credentials from cfg.Env only.
func forgetSnapshots(ctx context.Context, cfg restic.Config, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := append([]string{"forget"}, ids...)
	args = append(args, "--repo", cfg.Repository, "--password-file", cfg.PasswordFile)
	if cfg.CacheDir != "" {
		args = append(args, "--cache-dir", cfg.CacheDir)
	}
	cmd := exec.CommandContext(ctx, cfg.Binary, append(args, cfg.ExtraArgs...)...)
	cmd.Env = resticEnv(os.Environ(), cfg.Env)
	cmd.WaitDelay = 5 * time.Second // restic's children must not hold us forever
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return nil
	}
	cerr := &restic.CommandError{Op: "forget", Repository: cfg.Repository, ExitCode: -1, Message: lastLines(stderr.String(), 3)}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		cerr.ExitCode = exitErr.ExitCode()
	} else if ctx.Err() == nil {
		return fmt.Errorf("restic forget %s: %w", cfg.Repository, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", cerr, context.Cause(ctx))
	}
	return cerr
}

// resticEnv is the parent's environment without anything restic would take
// a password, repository or credentials from, plus extra.
func resticEnv(parent, extra []string) []string {
	env := make([]string, 0, len(parent)+len(extra))
	for _, kv := range parent {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "RESTIC_") && !strings.HasPrefix(name, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// lastLines returns the last n non-empty lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
