package functions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// runtimeDrivers are drivers that run in any Function image (the script
// addon's runs the user's own tools): install-runtime copies each that lies
// beside keepsake, so the user's image needs nothing of Keepsake's.
var runtimeDrivers = []string{"script-driver"}

// InstallRuntime is `keepsake install-runtime DIR`, the init container of
// every task Job: it copies this keepsake binary and the restic beside it
// (else on PATH), and the runtime drivers beside it, into DIR, a volume the
// task's container mounts, so a Function's image needs none of them.
func InstallRuntime(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) != 1 {
		return errors.New("install-runtime: want exactly one argument, the destination directory")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("install-runtime: locate keepsake: %w", err)
	}
	restic := resticBinary("")
	if _, err := os.Stat(restic); err != nil {
		return fmt.Errorf("install-runtime: no restic beside %s or on PATH", self)
	}
	sources := []string{self, restic}
	for _, name := range runtimeDrivers {
		if p := filepath.Join(filepath.Dir(self), name); fileExists(p) {
			sources = append(sources, p)
		}
	}
	for _, src := range sources {
		dst := filepath.Join(args[0], filepath.Base(src))
		if err := copyExecutable(src, dst); err != nil {
			return fmt.Errorf("install-runtime: %w", err)
		}
		fmt.Fprintln(stdout, "installed", dst)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
