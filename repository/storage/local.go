package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// localStore is a Store on a directory (a mounted volume).
type localStore struct {
	root string
}

func (l *localStore) path(key string) (string, error) {
	k, err := cleanKey(key)
	if err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(k)), nil
}

// Check requires the directory to exist and be writable.
func (l *localStore) Check(ctx context.Context) error {
	info, err := os.Stat(l.root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("check directory %s: %w", l.root, ErrBucketNotFound)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("check directory %s: %w: %w", l.root, ErrAccessDenied, err)
	case err != nil:
		return fmt.Errorf("check directory %s: %w", l.root, err)
	case !info.IsDir():
		return fmt.Errorf("check directory %s: not a directory: %w", l.root, ErrBucketNotFound)
	}
	probe, data := probeKey(), []byte("keepsake storage probe\n")
	if err := l.Put(ctx, probe, data); err != nil {
		return fmt.Errorf("check directory %s: %w", l.root, err)
	}
	got, err := l.Get(ctx, probe)
	if err == nil && !bytes.Equal(got, data) {
		err = errors.New("probe file read back differs")
	}
	if err != nil {
		return fmt.Errorf("check directory %s: %w", l.root, err)
	}
	return l.Delete(ctx, probe)
}

// Get reads a file.
func (l *localStore) Get(_ context.Context, key string) ([]byte, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, localKind(err, ErrNotFound))
	}
	return data, nil
}

// Put writes a file atomically (temporary file, then rename), creating
// parent directories.
func (l *localStore) Put(_ context.Context, key string, data []byte) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("write %s: %w", p, localKind(err, ErrBucketNotFound))
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return fmt.Errorf("write %s: %w", p, localKind(err, ErrBucketNotFound))
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// Delete removes a file.
func (l *localStore) Delete(_ context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", p, localKind(err, ErrNotFound))
	}
	return nil
}

// ListDir reads one directory level.
func (l *localStore) ListDir(_ context.Context, dir string) (files, dirs []string, err error) {
	p, err := l.path(dir)
	if err != nil {
		return nil, nil, err
	}
	entries, err := os.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", p, localKind(err, ErrNotFound))
	}
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		} else {
			files = append(files, e.Name())
		}
	}
	return files, dirs, nil
}

// localKind wraps a file-system error with the matching error kind.
func localKind(err error, notFound error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", notFound, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	}
	return err
}

// DeleteAll counts the files under dir, then removes the directory tree.
func (l *localStore) DeleteAll(_ context.Context, dir string) (int, error) {
	p, err := l.path(dir)
	if err != nil {
		return 0, err
	}
	if filepath.Clean(p) == filepath.Clean(l.root) {
		return 0, fmt.Errorf("delete everything in %s: %w", l.root, ErrWholeStorage)
	}
	if info, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) || err == nil && !info.IsDir() {
		return 0, nil // nothing under dir: a file named dir is not under it
	}
	files := 0
	err = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete %s: %w", p, localKind(err, ErrNotFound))
	}
	if err := os.RemoveAll(p); err != nil {
		return 0, fmt.Errorf("delete %s: %w", p, localKind(err, ErrNotFound))
	}
	return files, nil
}
