package physical

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// runTool runs the server's tool bin with args (and env, when not nil),
// copies its output to log, and fails with the command, its exit and the
// tail of its output.
func runTool(ctx context.Context, bin string, env []string, log io.Writer, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = &out, &out, env
	err := cmd.Run()
	if log != nil {
		_, _ = log.Write(out.Bytes())
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, tail(out.String(), 800))
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
