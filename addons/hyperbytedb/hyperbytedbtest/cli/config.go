// Package cli is an emulation of HyperbyteDB's own command line for its
// backup and restore (`hyperbytedb -c CFG backup --output DIR`, `hyperbytedb
// -c CFG restore --input DIR`), for tests: the real binary cannot be built
// here (its build needs crates and a chDB download). Every behaviour cites
// hyperbyte-cloud/hyperbytedb at commit 312a0fb, files under
// hyperbytedb/src/. It has no RocksDB: a checkpoint is emulated as a copy
// of the database's files (see checkpoint).
package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// config holds the keys of HyperbyteDB's configuration that backup and
// restore read (config.rs:55-58, 129-130).
type config struct {
	WALDir, MetaDir, SessionDataPath string
}

// defaults are config.rs:600-601 and 613: relative to the working
// directory.
var defaults = config{WALDir: "./wal", MetaDir: "./meta", SessionDataPath: "./chdb_data"}

// sections are the top-level tables of HyperbytedbConfig (config.rs:9-25),
// which refuses any other (deny_unknown_fields, config.rs:8).
var sections = []string{"server", "storage", "flush", "chdb", "auth", "cardinality", "cluster", "logging",
	"statement_summary", "hinted_handoff", "rate_limit", "retention", "disk"}

// Keys of the two sections read, which refuse unknown keys too
// (config.rs:54-63, 128-160). The other sections' keys are not checked.
var (
	storageKeys = []string{"wal_dir", "meta_dir", "wal_format"}
	chdbKeys    = []string{"session_data_path", "pool_size", "query_pool_size", "write_pool_size", "schema_cache_max_entries",
		"insert_max_threads", "insert_min_insert_block_size_rows", "insert_max_insert_block_size", "tag_low_cardinality_max"}
)

// envPrefix: variables HYPERBYTEDB__SECTION__KEY override the file
// (config.rs:581, figment's Env::prefixed("HYPERBYTEDB__").split("__")),
// as the official image does for the three paths (Dockerfile.runtime).
const envPrefix = "HYPERBYTEDB__"

// loadConfig is HyperbytedbConfig::load (config.rs:572-583): the defaults,
// then the TOML file when it exists (a missing file is no error,
// config.rs:575-579), then the environment.
func loadConfig(path string) (config, error) {
	c := defaults
	if _, err := os.Stat(path); err == nil {
		if err := c.mergeFile(path); err != nil {
			return c, err
		}
	}
	c.mergeEnv(os.Environ())
	return c, nil
}

func (c *config) mergeFile(path string) error {
	var doc map[string]any
	if _, err := toml.DecodeFile(path, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for name, v := range doc {
		if !slices.Contains(sections, name) {
			return fmt.Errorf("unknown field `%s`, expected one of %s", name, strings.Join(sections, ", "))
		}
		table, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("invalid type for `%s`: expected a table", name)
		}
		var err error
		switch name {
		case "storage":
			err = merge(table, storageKeys, map[string]*string{"wal_dir": &c.WALDir, "meta_dir": &c.MetaDir})
		case "chdb":
			err = merge(table, chdbKeys, map[string]*string{"session_data_path": &c.SessionDataPath})
		}
		if err != nil {
			return fmt.Errorf("%s.%w", name, err)
		}
	}
	return nil
}

// merge sets the string keys of dst that table holds, refusing keys
// outside known.
func merge(table map[string]any, known []string, dst map[string]*string) error {
	for k, v := range table {
		if !slices.Contains(known, k) {
			return fmt.Errorf("%s: unknown field", k)
		}
		p, ok := dst[k]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: invalid type: expected a string", k)
		}
		*p = s
	}
	return nil
}

func (c *config) mergeEnv(env []string) {
	keys := map[string]*string{
		envPrefix + "STORAGE__WAL_DIR":        &c.WALDir,
		envPrefix + "STORAGE__META_DIR":       &c.MetaDir,
		envPrefix + "CHDB__SESSION_DATA_PATH": &c.SessionDataPath,
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if p, ok := keys[strings.ToUpper(k)]; ok {
			*p = v
		}
	}
}
