package hyperbytedb

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest/cli"
	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/test/servers"
)

func TestMain(m *testing.M) {
	cli.RunIfAsked() // cli.Bin's hyperbytedb runs this binary as the emulation
	os.Exit(m.Run())
}

// TestPhysicalDriverHyperbytedb goes through the driver's physical format
// with tool hyperbytedb (the emulated CLI) and a real restic repository:
// two backups of an unchanged PVC, of which restic stores the second in
// little new data, the PVC changed, and the first backup, read back from
// restic, restored offline into it byte for byte.
func TestPhysicalDriverHyperbytedb(t *testing.T) {
	ctx := context.Background()
	pvc := t.TempDir()
	files := cli.PVCFiles()
	// Several of restic's chunks (512 KiB to 8 MiB), so that a changed
	// manifest.json cannot make every chunk of the stream new.
	files["chdb/store/a1b/a1b2/all_1_1_0/big.bin"] = noise(6 << 20)
	cli.WriteFiles(t, pvc, files)
	params := map[string]string{ParamFormat: FormatPhysical, ParamTool: ToolHyperbytedb, ParamTargetDir: pvc, ParamHyperbytedb: cli.Bin(t)}
	repo := newRestic(t)

	var first, second bytes.Buffer
	for _, stream := range []*bytes.Buffer{&first, &second} {
		if err := (Driver{}).Backup(ctx, &sdk.BackupRequest{Request: sdk.Request{Params: params}}, stream); err != nil {
			t.Fatal(err)
		}
	}
	snapshot, added := repo.backup(t, first.Bytes())
	_, addedAgain := repo.backup(t, second.Bytes())
	t.Logf("restic added %d bytes for a stream of %d, then %d for the second", added, first.Len(), addedAgain)
	if addedAgain > added/4 {
		t.Errorf("restic added %d bytes for the first backup and %d for the second of unchanged files: want the second deduplicated", added, addedAgain)
	}

	changed := maps.Clone(files)
	changed["wal/000004.sst"] = "written after the backup"
	delete(changed, "meta/000003.log")
	if err := os.RemoveAll(pvc); err != nil {
		t.Fatal(err)
	}
	cli.WriteFiles(t, pvc, changed)
	restore := &sdk.RestoreRequest{Request: sdk.Request{Params: params}}
	if _, err := (Driver{}).Restore(ctx, restore, bytes.NewReader(repo.dump(t, snapshot))); err != nil {
		t.Fatal(err)
	}
	if got := cli.ReadFiles(t, pvc); !maps.Equal(got, files) {
		for name := range files {
			if got[name] != files[name] {
				t.Errorf("after the restore %s holds %d bytes, want the backup's %d", name, len(got[name]), len(files[name]))
			}
		}
		t.Errorf("after the restore the PVC holds %d entries, want %d", len(got), len(files))
	}
}

// TestPhysicalHyperbytedbParams: the tool parameter's values, and a
// backup outside a Job that mounts the target's PVC.
func TestPhysicalHyperbytedbParams(t *testing.T) {
	ctx := context.Background()
	err := (Driver{}).Backup(ctx, &sdk.BackupRequest{Request: sdk.Request{Params: map[string]string{
		ParamFormat: FormatPhysical, ParamTool: "influxd2"}}}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `"influxd2" is neither influxd nor hyperbytedb`) {
		t.Errorf("tool influxd2: %v", err)
	}
	err = (Driver{}).Backup(ctx, &sdk.BackupRequest{Request: sdk.Request{Params: map[string]string{
		ParamFormat: FormatPhysical, ParamTool: ToolHyperbytedb, ParamTargetDir: "/no/such/dir"}}}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "mountsTargetVolume") {
		t.Errorf("backup without the PVC: %v, want an error naming mountsTargetVolume", err)
	}
}

// noise is n bytes that do not compress.
func noise(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// restic is a local restic repository.
type restic struct{ bin, dir string }

func newRestic(t *testing.T) restic {
	r := restic{bin: servers.Bin(t, "restic"), dir: t.TempDir()}
	r.run(t, nil, "init")
	return r
}

// backup stores stream as a file of a new snapshot and returns the
// snapshot and the bytes restic added to the repository for it.
func (r restic) backup(t *testing.T, stream []byte) (string, int64) {
	out := r.run(t, stream, "backup", "--json", "--stdin", "--stdin-filename", "dump")
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var msg struct {
			MessageType string `json:"message_type"`
			DataAdded   int64  `json:"data_added"`
			SnapshotID  string `json:"snapshot_id"`
		}
		if json.Unmarshal([]byte(line), &msg) == nil && msg.MessageType == "summary" {
			return msg.SnapshotID, msg.DataAdded
		}
	}
	t.Fatalf("restic backup printed no summary: %s", out)
	return "", 0
}

// dump returns the stream stored in snapshot.
func (r restic) dump(t *testing.T, snapshot string) []byte {
	return r.run(t, nil, "dump", snapshot, "dump")
}

func (r restic) run(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(r.bin, args...)
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+r.dir, "RESTIC_PASSWORD=test", "RESTIC_CACHE_DIR="+filepath.Join(r.dir, "cache"))
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("restic %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
