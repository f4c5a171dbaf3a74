package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envRun makes a test binary that calls RunIfAsked act as the emulated
// hyperbytedb.
const envRun = "KEEPSAKE_EMULATE_HYPERBYTEDB"

// RunIfAsked, called first in a test package's TestMain, runs the
// emulation and exits when the test binary was started by Bin's script.
func RunIfAsked() {
	if os.Getenv(envRun) == "1" {
		os.Exit(Main(os.Args[1:], os.Stderr))
	}
}

// Bin writes an executable named hyperbytedb into a temporary directory of
// t that runs this test binary as the emulation (its TestMain must call
// RunIfAsked), and returns its path: a program the driver runs as it
// would run the real one, without a build.
func Bin(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Script(t, fmt.Sprintf("%s=1 exec '%s' \"$@\"", envRun, strings.ReplaceAll(exe, "'", `'\''`)))
}

// Script writes an executable named hyperbytedb running the shell commands
// body into a temporary directory of t and returns its path, e.g. a tool
// that fails.
func Script(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hyperbytedb")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
