package guide

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/keepsake-dev/keepsake/addons/sdk/sdktest"
	"github.com/keepsake-dev/keepsake/test/addons"
)

// steps are commands the walk-through must run, in this order: a guide
// that lost one no longer shows a team how to get from an empty directory
// to a tested driver binary.
var steps = []string{
	"go mod init ",
	"go get " + SDKModule,
	"go mod tidy",
	"go vet ./...",
	"go test ./...",
	"go build -o redisdump-driver ./cmd/redisdump-driver",
}

// files are files the walk-through must write.
var files = []string{
	"driver.go", "driver_test.go", "cmd/redisdump-driver/main.go", "Dockerfile",
	"manifests/functions.yaml", "manifests/addon.yaml", "deploy/backup.yaml", "deploy/restore.yaml",
}

// TestGuide follows docs/writing-an-addon.md in an empty directory: the
// new module, the driver, its conformance test against a real Redis, and
// the static build. The module then depends on no Keepsake module but the
// SDK, served by the local proxy as SDKVersion, without a replace, and
// the guide's Addon and Functions match the built driver's Info.
func TestGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and runs its tests against redis-server")
	}
	w := Follow(t)
	checkSteps(t, w.Blocks)
	for _, f := range append(files, "redisdump-driver") {
		if _, err := os.Stat(w.File(f)); err != nil {
			t.Errorf("the walk-through left no %s: %v", f, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := w.Go(ctx, "list", "-m", "all")
	if err != nil {
		t.Fatal(err)
	}
	var sdk string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		fields := strings.Fields(line)
		switch {
		case fields[0] == SDKModule:
			sdk = line
		case strings.HasPrefix(fields[0], "github.com/keepsake-dev/"):
			t.Errorf("the module depends on %s: an addon module may depend on no Keepsake module but the SDK", line)
		}
	}
	if sdk != SDKModule+" "+SDKVersion {
		t.Errorf("go list -m all lists the SDK as %q, want %s %s", sdk, SDKModule, SDKVersion)
	}
	checkNoReplace(t, w.File("go.mod"))
	checkManifests(t, w)
}

// checkManifests fails t unless the guide's Addon and Functions are in
// step with the Info of the driver the guide built.
func checkManifests(t *testing.T, w *Walk) {
	t.Helper()
	info, err := sdktest.Start(t, w.File("redisdump-driver")).Client.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		data, err := os.ReadFile(w.File(name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	addons.CheckManifests(t, info, "redisdump", "/usr/local/bin/redisdump-driver",
		read("manifests/addon.yaml"), read("manifests/functions.yaml"))
}

// checkSteps fails t unless the run blocks hold each of steps, in order.
func checkSteps(t *testing.T, blocks []Block) {
	t.Helper()
	var script strings.Builder
	for _, b := range blocks {
		if b.Run {
			script.WriteString(b.Text)
		}
	}
	rest := script.String()
	for _, step := range steps {
		i := strings.Index(rest, step)
		if i < 0 {
			t.Errorf("the walk-through does not run %q (after the steps before it)", step)
			continue
		}
		rest = rest[i+len(step):]
	}
}

// checkNoReplace fails t when the module's go.mod replaces a module: the
// SDK must come from a proxy, as it does for a team outside the tree.
func checkNoReplace(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse(path, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Replace) > 0 {
		t.Errorf("go.mod replaces %s: the guide's module must take the SDK from a proxy", f.Replace[0].Old.Path)
	}
}

func TestBlocks(t *testing.T) {
	md := "text\n```sh run\ncd x\n```\n```go\nnot marked\n```\n```go file=a/b.go\npackage b\n```\n"
	blocks, err := Blocks([]byte(md))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || !blocks[0].Run || blocks[0].Text != "cd x\n" || blocks[0].Line != 2 ||
		blocks[1].File != "a/b.go" || blocks[1].Text != "package b\n" || blocks[1].Lang != "go" {
		t.Fatalf("Blocks = %+v", blocks)
	}
	for name, bad := range map[string]string{
		"unclosed":        "```sh run\ncd x\n",
		"outside the dir": "```go file=../x.go\n```\n",
		"both":            "```sh run file=x\n```\n",
	} {
		if _, err := Blocks([]byte(bad)); err == nil {
			t.Errorf("%s: Blocks accepted %q", name, bad)
		}
	}
}
