package physical_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/hyperbytedbtest/cli"
	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/physical"
)

func TestMain(m *testing.M) {
	cli.RunIfAsked() // cli.Bin's hyperbytedb runs this binary as the emulation
	os.Exit(m.Run())
}

var serverFiles = cli.PVCFiles()

// TestHyperbytedbBackupRestore backs a HyperbyteDB PVC up with the
// (emulated) hyperbytedb backup twice, changes the files, and restores the
// first backup offline: wal, meta and chdb are the backup's byte for byte,
// raft is untouched, and the two backups' streams are identical up to
// manifest.json, which comes last.
func TestHyperbytedbBackupRestore(t *testing.T) {
	ctx := context.Background()
	pvc := t.TempDir()
	cli.WriteFiles(t, pvc, serverFiles)
	x := physical.Hyperbytedb{Bin: cli.Bin(t), Dirs: physical.HyperbytedbLayout.Below(pvc)}
	var stream, again bytes.Buffer
	if err := x.Backup(ctx, t.TempDir(), &stream); err != nil {
		t.Fatal(err)
	}
	if err := x.Backup(ctx, t.TempDir(), &again); err != nil {
		t.Fatal(err)
	}
	checkSamePrefix(t, stream.Bytes(), again.Bytes())

	changed := maps.Clone(serverFiles)
	changed["wal/000004.sst"] = "newer points"
	changed["wal/000009.sst"] = "points after the backup"
	changed["chdb/store/new/data.bin"] = "a part written after the backup"
	changed["raft/log"] = "raft entries, newer"
	delete(changed, "meta/000003.log")
	delete(changed, "chdb/tmp/")
	if err := os.RemoveAll(pvc); err != nil {
		t.Fatal(err)
	}
	cli.WriteFiles(t, pvc, changed)

	if err := x.Restore(ctx, &stream, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(serverFiles)
	want["raft/log"] = changed["raft/log"]
	if got := cli.ReadFiles(t, pvc); !maps.Equal(got, want) {
		t.Errorf("after the restore the PVC holds\n%v\nwant\n%v", names(got), names(want))
		for name, data := range want {
			if got[name] != data {
				t.Errorf("%s: %d bytes, want %d", name, len(got[name]), len(data))
			}
		}
	}
}

// checkSamePrefix fails unless a and b, tar streams of two backups of the
// same files, hold the same entries in the same order with manifest.json
// last, and are byte-identical before it: restic deduplicates all of it.
func checkSamePrefix(t *testing.T, a, b []byte) {
	t.Helper()
	ea, eb := entries(t, a), entries(t, b)
	if !slices.Equal(ea, eb) || ea[len(ea)-1] != physical.HyperbytedbManifest {
		t.Fatalf("entries %v and %v: want the same, %s last", ea, eb, physical.HyperbytedbManifest)
	}
	i := bytes.Index(a, []byte(physical.HyperbytedbManifest))
	if i < 0 || len(a) < 10000 || !bytes.Equal(a[:i], b[:i]) {
		t.Errorf("two backups of unchanged files differ before %s (at byte %d of %d)", physical.HyperbytedbManifest, i, len(a))
	}
}

// TestHyperbytedbBackupFails: a tool that fails makes the backup fail with
// its exit and the tail of what it wrote, and no tar is written (restic
// gets no stream end, and the runtime records no snapshot).
func TestHyperbytedbBackupFails(t *testing.T) {
	pvc := t.TempDir()
	cli.WriteFiles(t, pvc, serverFiles)
	bin := cli.Script(t, `echo "opening the WAL" >&2; echo "Error: failed to open WAL for backup: IO error: lock held" >&2; exit 1`)
	x := physical.Hyperbytedb{Bin: bin, Dirs: physical.HyperbytedbLayout.Below(pvc)}
	var stream bytes.Buffer
	err := x.Backup(context.Background(), t.TempDir(), &stream)
	if err == nil || !strings.Contains(err.Error(), "exit status 1") || !strings.Contains(err.Error(), "failed to open WAL for backup: IO error: lock held") {
		t.Errorf("backup with a failing hyperbytedb: %v, want its exit status and its error", err)
	}
	if stream.Len() != 0 {
		t.Errorf("a failed backup wrote %d bytes of stream", stream.Len())
	}
	missing := physical.Hyperbytedb{Bin: filepath.Join(t.TempDir(), "no-hyperbytedb"), Dirs: x.Dirs}
	if err := missing.Backup(context.Background(), t.TempDir(), &stream); err == nil || !strings.Contains(err.Error(), "HyperbytedbCluster's image") {
		t.Errorf("backup without hyperbytedb: %v, want an error saying which image it needs", err)
	}
}

// TestHyperbytedbRestoreRefusesBeforeTouching: a stream without
// manifest.json, one whose manifest is not HyperbyteDB's, and a restore
// without the hyperbytedb binary all fail before the stopped server's
// directories are touched.
func TestHyperbytedbRestoreRefusesBeforeTouching(t *testing.T) {
	tests := map[string]struct {
		// files are the backup's; bin is the tool ("" the emulation).
		files map[string]string
		bin   string
		// wantErr is part of the error.
		wantErr string
	}{
		"no manifest.json": {files: map[string]string{"wal/CURRENT": "x", "meta/CURRENT": "y"}, wantErr: "no manifest.json"},
		"not HyperbyteDB's manifest": {files: map[string]string{"manifest.json": `{"databases":["metrics"]}`, "wal/CURRENT": "x"},
			wantErr: "not HyperbyteDB's"},
		"no wal, meta or data": {files: map[string]string{"manifest.json": `{"timestamp":"t","wal_last_seq":0,"engine_data_paths":[]}`},
			wantErr: "none of wal/, meta/ and data/"},
		"no hyperbytedb binary": {files: map[string]string{"manifest.json": `{"timestamp":"t","wal_last_seq":0,"engine_data_paths":[]}`, "wal/CURRENT": "x"},
			bin: "/no/such/hyperbytedb", wantErr: "/no/such/hyperbytedb"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src, pvc := t.TempDir(), t.TempDir()
			cli.WriteFiles(t, src, tc.files)
			cli.WriteFiles(t, pvc, serverFiles)
			var stream bytes.Buffer
			if err := physical.WriteTar(&stream, src); err != nil {
				t.Fatal(err)
			}
			bin := tc.bin
			if bin == "" {
				bin = cli.Bin(t)
			}
			x := physical.Hyperbytedb{Bin: bin, Dirs: physical.HyperbytedbLayout.Below(pvc)}
			err := x.Restore(context.Background(), &stream, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("restore: %v, want an error saying %q", err, tc.wantErr)
			}
			if got := cli.ReadFiles(t, pvc); !maps.Equal(got, serverFiles) {
				t.Errorf("the refused restore changed the PVC: %v", names(got))
			}
		})
	}
}

func names(files map[string]string) []string {
	return slices.Sorted(maps.Keys(files))
}

// entries are the names of a tar stream's entries, in order.
func entries(t *testing.T, stream []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(stream))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hdr.Name)
	}
}
