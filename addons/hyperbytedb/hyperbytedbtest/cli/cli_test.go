package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestConfig checks loadConfig against config.rs: defaults, the file, the
// environment over the file, a missing file, unknown keys refused.
func TestConfig(t *testing.T) {
	tests := map[string]struct {
		// toml is the file's text; none when "".
		toml string
		// env are HYPERBYTEDB__ variables set.
		env map[string]string
		// want is the result; wantErr part of the error instead.
		want    config
		wantErr string
	}{
		"no file: the defaults": {want: config{WALDir: "./wal", MetaDir: "./meta", SessionDataPath: "./chdb_data"}},
		"the file's paths": {
			toml: "[storage]\nwal_dir = \"/d/wal\"\nmeta_dir = \"/d/meta\"\nwal_format = \"bincode\"\n[chdb]\nsession_data_path = \"/d/chdb\"\npool_size = 1\n[server]\nport = 8086\n",
			want: config{WALDir: "/d/wal", MetaDir: "/d/meta", SessionDataPath: "/d/chdb"},
		},
		"a key left out keeps its default": {toml: "[storage]\nwal_dir = \"/d/wal\"\n",
			want: config{WALDir: "/d/wal", MetaDir: "./meta", SessionDataPath: "./chdb_data"}},
		"the environment wins over the file": {
			toml: "[storage]\nwal_dir = \"/d/wal\"\n",
			env:  map[string]string{"HYPERBYTEDB__STORAGE__WAL_DIR": "/e/wal", "HYPERBYTEDB__CHDB__SESSION_DATA_PATH": "/e/chdb"},
			want: config{WALDir: "/e/wal", MetaDir: "./meta", SessionDataPath: "/e/chdb"},
		},
		"unknown section":        {toml: "[backup]\ndir = \"x\"\n", wantErr: "unknown field `backup`"},
		"unknown key of storage": {toml: "[storage]\ndata_dir = \"x\"\n", wantErr: "storage.data_dir: unknown field"},
		"not TOML":               {toml: "[storage\n", wantErr: "config.toml"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := filepath.Join(t.TempDir(), "config.toml")
			if tc.toml != "" {
				if err := os.WriteFile(path, []byte(tc.toml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := loadConfig(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("config %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestBackupRestore runs the commands as main.rs parses them: a backup's
// layout and manifest, the refusals of backup.rs, and a restore that
// replaces only the directories the backup holds.
func TestBackupRestore(t *testing.T) {
	root := t.TempDir()
	for name, data := range map[string]string{"wal/CURRENT": "w", "wal/1.sst": "w1", "meta/CURRENT": "m", "chdb/store/p/data.bin": "c"} {
		write(t, filepath.Join(root, name), data)
	}
	cfg := filepath.Join(root, "hyperbytedb.toml")
	write(t, cfg, "[storage]\nwal_dir = \""+root+"/wal\"\nmeta_dir = \""+root+"/meta\"\n[chdb]\nsession_data_path = \""+root+"/chdb\"\n")
	out := filepath.Join(t.TempDir(), "b")
	if code, stderr := runMain("-c", cfg, "backup", "--output", out); code != 0 {
		t.Fatalf("backup exited %d: %s", code, stderr)
	}
	var m manifest
	if err := json.Unmarshal(read(t, filepath.Join(out, "manifest.json")), &m); err != nil || m.Timestamp == "" ||
		!slices.Equal(m.EngineDataPaths, []string{filepath.Join(root, "chdb/store/p/data.bin")}) {
		t.Errorf("manifest %+v, %v: want a timestamp and the session file's source path", m, err)
	}
	if got := string(read(t, filepath.Join(out, "data/store/p/data.bin"))); got != "c" {
		t.Errorf("data/ holds %q, want the session directory's copy", got)
	}
	if code, stderr := runMain("--config="+cfg, "backup", "--output", out); code != 1 || !strings.Contains(stderr, "WAL checkpoint failed: Invalid argument: Directory exists") {
		t.Errorf("backup into a used directory: exit %d, %q", code, stderr)
	}
	if code, stderr := runMain("-c", filepath.Join(root, "none.toml"), "backup", "--output", t.TempDir()); code != 1 || !strings.Contains(stderr, "failed to open WAL for backup") {
		t.Errorf("backup of the default ./wal: exit %d, %q", code, stderr)
	}

	write(t, filepath.Join(root, "wal/1.sst"), "changed")
	write(t, filepath.Join(root, "wal/2.sst"), "new")
	if err := os.RemoveAll(filepath.Join(out, "data")); err != nil { // a backup without data/
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "chdb/kept"), "k")
	if code, stderr := runMain("-c", cfg, "restore", "--input", out); code != 0 {
		t.Fatalf("restore exited %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "wal/2.sst")); err == nil || string(read(t, filepath.Join(root, "wal/1.sst"))) != "w1" {
		t.Errorf("wal/ was not replaced by the backup's")
	}
	if string(read(t, filepath.Join(root, "chdb/kept"))) != "k" {
		t.Errorf("chdb/ was replaced although the backup has no data/ (backup.rs:157)")
	}

	empty := t.TempDir()
	if code, stderr := runMain("-c", cfg, "restore", "--input", empty); code != 1 || !strings.Contains(stderr, "Error: manifest.json not found in backup directory") {
		t.Errorf("restore without manifest: exit %d, %q", code, stderr)
	}
	write(t, filepath.Join(empty, "manifest.json"), `{"timestamp":"t","wal_last_seq":3,"parquet_files":[]}`)
	if code, stderr := runMain("-c", cfg, "restore", "--input", empty); code != 1 || !strings.Contains(stderr, "backup directory contains no wal/, meta/, or data/ subdirectories") {
		t.Errorf("restore of a manifest only: exit %d, %q", code, stderr)
	}
}

func runMain(args ...string) (int, string) {
	var stderr bytes.Buffer
	return Main(args, &stderr), stderr.String()
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
