package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Main runs the emulated `hyperbytedb` with args (without the program
// name) and returns its exit status. Like the real main, which returns
// anyhow::Result (main.rs:49), an error is printed as "Error: ..." and
// exits 1.
func Main(args []string, stderr io.Writer) int {
	if err := run(args); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

// command is a parsed command line (main.rs:18-46).
type command struct {
	// config is -c/--config, default config.toml (main.rs:25-26).
	config string
	// name is backup or restore; dir their --output or --input.
	name, dir string
}

func run(args []string) error {
	cmd, err := parseArgs(args)
	if err != nil {
		return err
	}
	// The configuration is loaded before the command runs (main.rs:51).
	cfg, err := loadConfig(cmd.config)
	if err != nil {
		return err
	}
	if cmd.name == "backup" {
		return backup(cfg, cmd.dir)
	}
	return restore(cfg, cmd.dir)
}

// parseArgs reads `[-c CFG] backup --output DIR` or `[-c CFG] restore
// --input DIR`, as clap parses main.rs's Cli: the config option belongs to
// the top-level command, before the subcommand. serve is not emulated.
func parseArgs(args []string) (command, error) {
	cmd := command{config: "config.toml"}
	rest, err := option(args, &cmd.config, "-c", "--config")
	if err != nil {
		return cmd, err
	}
	if len(rest) == 0 {
		return cmd, errors.New("a subcommand is required: backup or restore (serve is not emulated)")
	}
	cmd.name = rest[0]
	flag := map[string]string{"backup": "--output", "restore": "--input"}[cmd.name]
	if flag == "" {
		return cmd, fmt.Errorf("unrecognized subcommand '%s' (the emulation has backup and restore)", cmd.name)
	}
	left, err := option(rest[1:], &cmd.dir, flag)
	if err != nil {
		return cmd, err
	}
	if len(left) > 0 || cmd.dir == "" {
		return cmd, fmt.Errorf("usage: hyperbytedb [-c CONFIG] %s %s <%s>", cmd.name, flag, strings.TrimPrefix(flag, "--"))
	}
	return cmd, nil
}

// option takes the leading occurrences of an option named by names (as
// "-c X", "-cX", "--config X" or "--config=X") into dst and returns the
// arguments after them.
func option(args []string, dst *string, names ...string) ([]string, error) {
	for len(args) > 0 {
		matched := false
		for _, n := range names {
			switch a := args[0]; {
			case a == n:
				if len(args) < 2 {
					return nil, fmt.Errorf("a value is required for '%s'", n)
				}
				*dst, args, matched = args[1], args[2:], true
			case strings.HasPrefix(a, n+"=") && strings.HasPrefix(n, "--"):
				*dst, args, matched = strings.TrimPrefix(a, n+"="), args[1:], true
			case len(n) == 2 && strings.HasPrefix(a, n) && len(a) > 2 && !strings.HasPrefix(a, "--"):
				*dst, args, matched = a[2:], args[1:], true
			}
			if matched {
				break
			}
		}
		if !matched {
			return args, nil
		}
	}
	return args, nil
}

// manifest is BackupManifest (backup.rs:4-10); engine_data_paths was once
// called parquet_files (the serde alias, backup.rs:8).
type manifest struct {
	Timestamp       string   `json:"timestamp"`
	WALLastSeq      uint64   `json:"wal_last_seq"`
	EngineDataPaths []string `json:"engine_data_paths"`
}

// backup is backup.rs:12-106: checkpoints of the WAL and the metadata into
// DIR/wal and DIR/meta, a copy of the chDB session directory into
// DIR/data, and DIR/manifest.json.
func backup(cfg config, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil { // backup.rs:17
		return err
	}
	if err := checkpoint(cfg.WALDir, filepath.Join(out, "wal"), "WAL"); err != nil { // backup.rs:19-51
		return err
	}
	if err := checkpoint(cfg.MetaDir, filepath.Join(out, "meta"), "metadata"); err != nil { // backup.rs:54-78
		return err
	}
	var files []string
	if exists(cfg.SessionDataPath) { // backup.rs:84-90: no session directory, no data/
		var err error
		if files, err = copyDir(cfg.SessionDataPath, filepath.Join(out, "data")); err != nil {
			return err
		}
	}
	m := manifest{
		// chrono's Utc::now().to_rfc3339() (backup.rs:95): an offset, not Z.
		Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.999999999-07:00"),
		// The emulation holds no RocksDB, so no last_seq key in the WAL's
		// wal_meta column family: 0, what backup.rs:37-44 gives then.
		WALLastSeq:      0,
		EngineDataPaths: files,
	}
	if m.EngineDataPaths == nil {
		m.EngineDataPaths = []string{}
	}
	data, err := json.MarshalIndent(m, "", "  ") // serde_json::to_string_pretty, backup.rs:100
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "manifest.json"), data, 0o644)
}

// checkpoint emulates opening the RocksDB at db read-only and creating a
// checkpoint of it at dst (backup.rs:29-50, 66-77). A read-only open fails
// when db holds no database (RocksDB reads its CURRENT file first, and a
// read-only open never creates one); a checkpoint refuses a dst that
// exists (RocksDB's CheckpointImpl::CreateCheckpoint: "Directory exists").
// The checkpoint itself is a copy of db's files: a real one copies (or
// hard-links) the live SST files, MANIFEST, CURRENT and OPTIONS, the same
// files for a database nobody writes to, which is what tests back up.
func checkpoint(db, dst, what string) error {
	if !exists(filepath.Join(db, "CURRENT")) {
		return fmt.Errorf("failed to open %s for backup: IO error: No such file or directory: While opening a file for sequentially reading: %s/CURRENT: No such file or directory", what, db)
	}
	if exists(dst) {
		return fmt.Errorf("%s checkpoint failed: Invalid argument: Directory exists", what)
	}
	_, err := copyDir(db, dst)
	return err
}

// restore is backup.rs:108-174: it refuses a directory without
// manifest.json, or with none of wal/, meta/ and data/; then each of them
// that the backup holds replaces its directory (removed first, then
// copied).
func restore(cfg config, in string) error {
	path := filepath.Join(in, "manifest.json")
	if !exists(path) {
		return errors.New("manifest.json not found in backup directory") // backup.rs:113-116
	}
	if err := readManifest(path); err != nil { // backup.rs:117-118
		return err
	}
	pairs := [][2]string{
		{filepath.Join(in, "wal"), cfg.WALDir},
		{filepath.Join(in, "meta"), cfg.MetaDir},
		{filepath.Join(in, "data"), cfg.SessionDataPath},
	}
	if !exists(pairs[0][0]) && !exists(pairs[1][0]) && !exists(pairs[2][0]) { // backup.rs:131-136
		return errors.New("backup directory contains no wal/, meta/, or data/ subdirectories")
	}
	for _, p := range pairs { // backup.rs:138-168, in this order
		if !exists(p[0]) {
			continue
		}
		if err := os.RemoveAll(p[1]); err != nil {
			return err
		}
		if _, err := copyDir(p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

// readManifest parses manifest.json as serde does BackupManifest: every
// field is required (engine_data_paths or its alias parquet_files),
// unknown ones are ignored.
func readManifest(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	for _, f := range []string{"timestamp", "wal_last_seq"} {
		if _, ok := fields[f]; !ok {
			return fmt.Errorf("missing field `%s`", f)
		}
	}
	if _, ok := fields["engine_data_paths"]; !ok {
		if _, ok := fields["parquet_files"]; !ok {
			return errors.New("missing field `engine_data_paths`")
		}
	}
	var m manifest
	return json.Unmarshal(data, &m)
}

// copyDir is copy_dir_recursive (backup.rs:176-194): it creates dst and
// copies every file below src (std::fs::copy keeps the permission bits),
// and returns the source paths of the files copied. Unlike Path::is_dir,
// it does not descend into a symbolic link to a directory (RocksDB and
// chDB make none).
func copyDir(src, dst string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if st.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		files = append(files, path)
		return copyFile(path, target, st.Mode().Perm())
	})
	return files, err
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
