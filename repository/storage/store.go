package storage

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// Store is the object storage of one BackupStorage. Keys are slash-separated
// and relative to the configured prefix (or directory).
type Store interface {
	// Check verifies the storage can be used: the bucket (directory) exists
	// and a probe object can be written, read back and deleted. The error
	// wraps ErrBucketNotFound, ErrAccessDenied, ErrUnreachable or
	// ErrInvalidCredentials when it is one of those.
	Check(ctx context.Context) error
	// Get returns the content of the object at key; the error wraps
	// ErrNotFound when there is none. Meant for small files.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put writes data at key, replacing any object there.
	Put(ctx context.Context, key string, data []byte) error
	// Delete removes the object at key; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// ListDir returns the names of the objects directly under dir and of
	// its sub-directories (without trailing slash), one level deep. An
	// absent dir lists as empty.
	ListDir(ctx context.Context, dir string) (files, dirs []string, err error)
}

var (
	_ Store = (*s3Store)(nil)
	_ Store = (*localStore)(nil)
)

// Open returns the Store cfg describes. It does not contact the storage:
// call Check for that.
func Open(cfg Config) (Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	if cfg.Provider == ProviderLocal {
		return &localStore{root: cfg.Local.Path}, nil
	}
	return newS3Store(cfg)
}

// probeKey is the object Check writes and removes again.
const probeKey = ".keepsake-probe"

// cleanKey joins key parts into a key without leading, trailing or double
// slashes, refusing ".." so that a key never leaves the prefix.
func cleanKey(parts ...string) (string, error) {
	k := strings.Trim(path.Join(parts...), "/")
	for _, p := range strings.Split(k, "/") {
		if p == ".." {
			return "", fmt.Errorf("key %q leaves the storage prefix", k)
		}
	}
	if k == "." {
		k = ""
	}
	return k, nil
}
