// Package guide follows docs/writing-an-addon.md step by step, as an
// outside team would: in an empty directory it runs the guide's commands
// and writes its files exactly as the guide shows them, with the SDK module
// served from a local module proxy built from this tree's addons/sdk (the
// SDK is not published, and the machine has no internet but the Go module
// proxy; every other module comes from the real GOPROXY).
//
// The guide marks what it wants followed with the info string of a fenced
// code block: "run" after the language (```sh run) is a shell script run in
// the current directory, whose last directory carries over to the next
// one; "file=PATH" (```go file=driver.go) is a file written at PATH under
// that directory. Other blocks are prose.
package guide

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

// SDKModule is the SDK's module path, the one Keepsake module an addon
// module may depend on.
const SDKModule = "github.com/keepsake-dev/keepsake/addons/sdk"

// SDKVersion is the version the local proxy serves the tree's SDK as.
const SDKVersion = "v0.1.0"

// Path is the guide, relative to the repository's root.
const Path = "docs/writing-an-addon.md"

// stepTimeout bounds each "run" block: a go test of the guide's module
// against a real Redis included.
const stepTimeout = 10 * time.Minute

// Block is a fenced code block of the guide that the walk-through follows.
type Block struct {
	// Line is the line of the opening fence, counted from 1.
	Line int
	// Lang is the block's language, e.g. "go" or "sh".
	Lang string
	// Run is set for a shell script to run.
	Run bool
	// File is the path of the file the block holds, for a file block.
	File string
	// Text is the block's content, with its final newline.
	Text string
}

// Blocks returns the guide's marked blocks in order; an unterminated fence
// or a file path leaving the directory is an error.
func Blocks(markdown []byte) ([]Block, error) {
	var blocks []Block
	var open *Block
	var text strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(markdown))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fence := strings.HasPrefix(line, "```")
		switch {
		case open == nil && fence:
			b, err := parseInfo(n, strings.TrimPrefix(line, "```"))
			if err != nil {
				return nil, err
			}
			open = &b
			text.Reset()
		case open != nil && strings.TrimSpace(line) == "```":
			if open.Run || open.File != "" {
				open.Text = text.String()
				blocks = append(blocks, *open)
			}
			open = nil
		case open != nil:
			text.WriteString(line + "\n")
		}
	}
	if open != nil {
		return nil, fmt.Errorf("line %d: code block never closed", open.Line)
	}
	return blocks, sc.Err()
}

// parseInfo reads a fence's info string: the language, then "run" or
// "file=PATH".
func parseInfo(line int, info string) (Block, error) {
	b := Block{Line: line}
	words := strings.Fields(info)
	if len(words) == 0 {
		return b, nil
	}
	b.Lang = words[0]
	for _, w := range words[1:] {
		switch {
		case w == "run":
			b.Run = true
		case strings.HasPrefix(w, "file="):
			b.File = strings.TrimPrefix(w, "file=")
			if !filepath.IsLocal(b.File) {
				return b, fmt.Errorf("line %d: file %q is not a path inside the module", line, b.File)
			}
		}
	}
	if b.Run && b.File != "" {
		return b, fmt.Errorf("line %d: a block is a file or a script to run, not both", line)
	}
	return b, nil
}

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Walk is the outcome of following the guide.
type Walk struct {
	// Dir is the directory the walk-through ended in: the new module.
	Dir string
	// Blocks are the blocks followed.
	Blocks []Block
	// Env is the environment the scripts ran with.
	Env []string
	// cwd is the file a script leaves its last directory in.
	cwd string
}

// File is the path of name in the walk-through's directory.
func (w *Walk) File(name string) string { return filepath.Join(w.Dir, name) }

// Go runs the go command in the module with the walk-through's
// environment and returns its output.
func (w *Walk) Go(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Env = w.Dir, w.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Follow follows the guide in a temporary directory of t: it serves the
// SDK from a local proxy, runs the "run" blocks and writes the "file"
// blocks in order, and fails t at the first step that fails.
func Follow(t testing.TB) *Walk {
	t.Helper()
	markdown, err := os.ReadFile(filepath.Join(Root(), Path))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := Blocks(markdown)
	if err != nil {
		t.Fatalf("%s: %v", Path, err)
	}
	tmp := t.TempDir()
	proxy := filepath.Join(tmp, "proxy")
	if err := ServeSDK(proxy, filepath.Join(Root(), "addons", "sdk"), SDKVersion); err != nil {
		t.Fatal(err)
	}
	env, err := goEnv(proxy)
	if err != nil {
		t.Fatal(err)
	}
	w := &Walk{Dir: filepath.Join(tmp, "work"), Blocks: blocks, Env: env, cwd: filepath.Join(tmp, "cwd")}
	if err := os.Mkdir(w.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		out, err := w.follow(b)
		if err != nil {
			t.Fatalf("%s line %d: %v", Path, b.Line, err)
		}
		t.Logf("%s line %d: %s%s", Path, b.Line, b.describe(), out)
	}
	return w
}

// describe names a block in the log.
func (b Block) describe() string {
	if b.Run {
		return "ran " + strings.Join(strings.Fields(b.Text), " ")
	}
	return "wrote " + b.File
}

// follow runs or writes one block, and returns a script's output.
func (w *Walk) follow(b Block) (string, error) {
	if !b.Run {
		path := w.File(b.File)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", err
		}
		return "", os.WriteFile(path, []byte(b.Text), 0o644)
	}
	// The script's last directory is where the next block goes on.
	script := "set -eu\n" + b.Text + "pwd > " + w.cwd + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = w.Dir, w.Env
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w\n%s", strings.TrimSpace(b.Text), err, out)
	}
	dir, err := os.ReadFile(w.cwd)
	if err != nil {
		return "", err
	}
	w.Dir = strings.TrimSpace(string(dir))
	return "\n" + string(out), nil
}

// goEnv is the environment of the walk-through: the SDK from the local
// proxy at dir (not checked against the checksum database, which does not
// know it), everything else from the GOPROXY the go command has, no
// workspace, and no toolchain download.
func goEnv(dir string) ([]string, error) {
	out, err := exec.Command("go", "env", "GOPROXY", "GOFLAGS").Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	vals := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(vals) != 2 {
		return nil, fmt.Errorf("go env printed %q", out)
	}
	return append(os.Environ(),
		"GOPROXY=file://"+dir+","+vals[0],
		"GONOSUMDB="+SDKModule,
		"GOFLAGS="+strings.TrimSpace(vals[1]+" -mod=mod"),
		"GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0",
	), nil
}

// ServeSDK writes a GOPROXY directory at dir serving the module in src as
// version: its list, .info, .mod and .zip files, as `go mod download`
// expects them.
func ServeSDK(dir, src, version string) error {
	mod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return err
	}
	v := module.Version{Path: SDKModule, Version: version}
	escaped, err := module.EscapePath(v.Path)
	if err != nil {
		return err
	}
	at := filepath.Join(dir, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC()})
	if err != nil {
		return err
	}
	for name, content := range map[string][]byte{"list": []byte(version + "\n"), version + ".info": info, version + ".mod": mod} {
		if err := os.WriteFile(filepath.Join(at, name), content, 0o644); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(at, version+".zip"))
	if err != nil {
		return err
	}
	if err := zip.CreateFromDir(f, v, src); err != nil {
		f.Close()
		return fmt.Errorf("zip %s: %w", src, err)
	}
	return f.Close()
}
