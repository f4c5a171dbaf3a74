package physical

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// HyperbyteDB's backup (hyperbyte-cloud/hyperbytedb at 312a0fb,
// hyperbytedb/src/application/backup.rs) writes these into its --output
// directory, and its restore reads them back.
const (
	// HyperbytedbManifest is manifest.json: timestamp, wal_last_seq and
	// engine_data_paths (backup.rs:4-10, 93-100). Restore refuses a
	// directory without it (backup.rs:113-116).
	HyperbytedbManifest = "manifest.json"
	// The checkpoints of the WAL and metadata RocksDBs, and the copy of the
	// chDB session directory (backup.rs:20, 55, 82).
	hyperbytedbWAL, hyperbytedbMeta, hyperbytedbData = "wal", "meta", "data"
)

// HyperbytedbLayout are HyperbyteDB's directories below the root of its
// PVC, as the HyperbyteDB operator lays them out: it mounts the PVC at
// /var/lib/hyperbytedb (internal/hyperbytedb/statefulset.go) and names
// wal_dir /var/lib/hyperbytedb/wal, meta_dir .../meta and session_data_path
// .../chdb (internal/hyperbytedb/configmap.go), as the official image does
// (Dockerfile.runtime).
var HyperbytedbLayout = HyperbytedbDirs{WAL: "wal", Meta: "meta", Session: "chdb"}

// HyperbytedbDirs are the three directories HyperbyteDB's backup reads and
// its restore replaces: storage.wal_dir, storage.meta_dir and
// chdb.session_data_path (config.rs:55-58, 129-130).
type HyperbytedbDirs struct {
	WAL, Meta, Session string
}

// Below returns the directories with root prepended.
func (d HyperbytedbDirs) Below(root string) HyperbytedbDirs {
	return HyperbytedbDirs{WAL: filepath.Join(root, d.WAL), Meta: filepath.Join(root, d.Meta), Session: filepath.Join(root, d.Session)}
}

// Hyperbytedb runs HyperbyteDB's own `hyperbytedb backup` and `hyperbytedb
// restore` on a server's directories (a PVC mounted in the Job).
type Hyperbytedb struct {
	// Bin is the path of the hyperbytedb binary, e.g. "hyperbytedb"
	// (looked up on PATH).
	Bin string
	// Dirs are the server's directories the commands read or write.
	Dirs HyperbytedbDirs
	// Log receives the commands' output (HyperbyteDB logs to stdout).
	Log io.Writer
}

// Backup runs `hyperbytedb -c <config> backup --output <staging>/backup`
// and writes that directory to w with WriteTar, manifest.json last: its
// timestamp changes every run, and the bytes before it do not when the
// files did not. The command writes files only, so staging is on scratch
// disk and holds a whole backup for a while.
func (x Hyperbytedb) Backup(ctx context.Context, staging string, w io.Writer) error {
	if err := x.check(); err != nil {
		return err
	}
	cfg, err := x.writeConfig(staging)
	if err != nil {
		return err
	}
	out := filepath.Join(staging, "backup") // the checkpoints refuse a directory that exists
	if err := x.run(ctx, "-c", cfg, "backup", "--output", out); err != nil {
		return err
	}
	return WriteTar(w, out, HyperbytedbManifest)
}

// Restore extracts a Backup stream from r into staging (an empty
// directory), checks that it is a HyperbyteDB backup and that the binary
// can be run, and only then runs `hyperbytedb -c <config> restore --input`,
// which removes and replaces each of Dirs the backup holds.
func (x Hyperbytedb) Restore(ctx context.Context, r io.Reader, staging string) error {
	in := filepath.Join(staging, "backup")
	if err := ReadTar(r, in); err != nil {
		return err
	}
	// Nothing of the stopped server is touched before the restore can run.
	if err := checkHyperbytedbBackup(in); err != nil {
		return err
	}
	if err := x.check(); err != nil {
		return err
	}
	cfg, err := x.writeConfig(staging)
	if err != nil {
		return err
	}
	return x.run(ctx, "-c", cfg, "restore", "--input", in)
}

// checkHyperbytedbBackup fails, as the restore command would but before
// it runs, on a directory without a manifest.json that parses, or without
// any of wal/, meta/ and data/ (backup.rs:113-136).
func checkHyperbytedbBackup(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, HyperbytedbManifest))
	if err != nil {
		return fmt.Errorf("the stream is not a HyperbyteDB backup (no %s): %w", HyperbytedbManifest, err)
	}
	var m struct {
		Timestamp  *string `json:"timestamp"`
		WALLastSeq *uint64 `json:"wal_last_seq"`
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Timestamp == nil || m.WALLastSeq == nil {
		return fmt.Errorf("%s of the backup is not HyperbyteDB's (timestamp, wal_last_seq): %v", HyperbytedbManifest, err)
	}
	for _, sub := range []string{hyperbytedbWAL, hyperbytedbMeta, hyperbytedbData} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			return nil
		}
	}
	return errors.New("the backup holds none of wal/, meta/ and data/: nothing to restore")
}

// writeConfig writes the configuration file the commands get with -c,
// naming Dirs: the keys wal_dir, meta_dir and session_data_path
// (config.rs:55-58, 129-130). Every other key keeps HyperbyteDB's default
// (config.rs:573-574); backup and restore read no other.
func (x Hyperbytedb) writeConfig(staging string) (string, error) {
	text := fmt.Sprintf("[storage]\nwal_dir = %s\nmeta_dir = %s\n\n[chdb]\nsession_data_path = %s\n",
		tomlString(x.Dirs.WAL), tomlString(x.Dirs.Meta), tomlString(x.Dirs.Session))
	path := filepath.Join(staging, "hyperbytedb.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// env sets the same directories as HYPERBYTEDB__ variables, which win over
// the file (config.rs:581): the official image sets them to
// /var/lib/hyperbytedb/... (Dockerfile.runtime), where the Job has no PVC.
func (x Hyperbytedb) env() []string {
	return append(os.Environ(),
		"HYPERBYTEDB__STORAGE__WAL_DIR="+x.Dirs.WAL,
		"HYPERBYTEDB__STORAGE__META_DIR="+x.Dirs.Meta,
		"HYPERBYTEDB__CHDB__SESSION_DATA_PATH="+x.Dirs.Session)
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(s) + `"`
}

// check fails when hyperbytedb cannot be run: the image lacks it, or the
// hyperbytedb parameter names a path that is not there.
func (x Hyperbytedb) check() error {
	if _, err := exec.LookPath(x.Bin); err != nil {
		return fmt.Errorf("hyperbytedb %q: %w: the Function must run in the HyperbytedbCluster's image, with the driver copied in (task parameter hyperbytedb gives the binary's path)", x.Bin, err)
	}
	return nil
}

// run runs hyperbytedb with args, failing with its exit and the tail of
// its output.
func (x Hyperbytedb) run(ctx context.Context, args ...string) error {
	return runTool(ctx, x.Bin, x.env(), x.Log, args...)
}
