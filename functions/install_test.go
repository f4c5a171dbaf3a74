package functions

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestInstallRuntime runs the real install step with the test binary as
// "keepsake" and a restic placed beside it, as in the keepsake image.
func TestInstallRuntime(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	restic := filepath.Join(filepath.Dir(self), "restic")
	if err := os.WriteFile(restic, []byte("#!/bin/sh\necho restic\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(restic) })
	dest := t.TempDir()
	if err := InstallRuntime(context.Background(), []string{dest}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{self, restic} {
		want, _ := os.ReadFile(src)
		dst := filepath.Join(dest, filepath.Base(src))
		got, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: copy differs from %s (err %v)", dst, src, err)
		}
		if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o755 {
			t.Fatalf("%s mode %v, want 0755", dst, fi.Mode().Perm())
		}
	}
	if err := InstallRuntime(context.Background(), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("install-runtime without a destination succeeded")
	}
}

// TestInstallRuntimeCopiesRuntimeDrivers: a driver that runs in any
// Function image (the script driver) is copied beside keepsake when the
// image holds it, and its absence is no error.
func TestInstallRuntimeCopiesRuntimeDrivers(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	restic := filepath.Join(filepath.Dir(self), "restic")
	driver := filepath.Join(filepath.Dir(self), "script-driver")
	for _, p := range []string{restic, driver} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+filepath.Base(p)+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(p) })
	}
	dest := t.TempDir()
	if err := InstallRuntime(context.Background(), []string{dest}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "script-driver")); err != nil || string(got) != "#!/bin/sh\necho script-driver\n" {
		t.Fatalf("script-driver not installed: %q, %v", got, err)
	}
	_ = os.Remove(driver)
	if err := InstallRuntime(context.Background(), []string{t.TempDir()}, io.Discard, io.Discard); err != nil {
		t.Fatalf("install-runtime without a script-driver in the image: %v", err)
	}
}
