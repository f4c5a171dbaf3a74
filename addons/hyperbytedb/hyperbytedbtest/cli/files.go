package cli

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PVCFiles are the files of a HyperbyteDB PVC as the HyperbyteDB operator
// lays it out: the WAL and metadata RocksDBs, the chDB session directory
// (with an empty directory), and raft/, which backup and restore leave
// alone. The contents are made up: the emulation copies, never parses.
func PVCFiles() map[string]string {
	return map[string]string{
		"wal/CURRENT":                            "MANIFEST-000005\n",
		"wal/MANIFEST-000005":                    "wal manifest",
		"wal/000004.sst":                         strings.Repeat("points ", 5000),
		"wal/OPTIONS-000007":                     "[DBOptions]\n",
		"meta/CURRENT":                           "MANIFEST-000002\n",
		"meta/000003.log":                        "db:metrics",
		"chdb/metadata/metrics.sql":              "ATTACH DATABASE metrics",
		"chdb/store/a1b/a1b2/all_1_1_0/data.bin": strings.Repeat("\x00\x01", 3000),
		"chdb/tmp/":                              "", // an empty directory
		"raft/log":                               "raft entries",
	}
}

// WriteFiles writes files (a name ending in / is an empty directory) below
// dir.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ReadFiles is the inverse of WriteFiles: the files and empty
// directories below dir.
func ReadFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if entries, err := os.ReadDir(path); err == nil && len(entries) == 0 {
				got[rel+"/"] = ""
			}
			return nil
		}
		data, err := os.ReadFile(path)
		got[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
