package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// DeleteAll removes every object under dir (keys dir/..., at any depth;
	// not an object named dir itself, nor a sibling such as dir2/...) and
	// returns how many it removed. An absent dir removes nothing. It wraps
	// ErrWholeStorage and removes nothing when dir is the root of the bucket
	// (or of the local directory): no bug may ever empty a whole bucket.
	// Objects written under dir while it runs may survive it.
	DeleteAll(ctx context.Context, dir string) (int, error)
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

// probeKey returns the name of the object Check writes and removes again,
// unique so that concurrent checks of one storage do not collide.
func probeKey() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return ".keepsake-probe-" + hex.EncodeToString(b)
}

// cleanKey joins key parts into a key without leading, trailing or double
// slashes. It refuses ".." anywhere, so that no part can climb out of the
// one before it (a repository directory out of its namespace, say).
func cleanKey(parts ...string) (string, error) {
	for _, part := range parts {
		for _, seg := range strings.Split(part, "/") {
			if seg == ".." {
				return "", fmt.Errorf("key part %q contains \"..\"", part)
			}
		}
	}
	k := strings.Trim(path.Join(parts...), "/")
	if k == "." {
		k = ""
	}
	return k, nil
}

// repositoryKey is the key of repository dir in namespace, relative to the
// prefix. The namespace is one path segment and dir stays inside it.
func repositoryKey(namespace, dir string) (string, error) {
	if namespace == "" || strings.Contains(namespace, "/") || strings.Trim(dir, "/") == "" {
		return "", fmt.Errorf("repository %q in namespace %q: need a namespace and a directory", dir, namespace)
	}
	return cleanKey(namespace, dir)
}
