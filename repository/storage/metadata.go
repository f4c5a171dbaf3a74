package storage

import (
	"context"
	"fmt"
	"path"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// File names of Keepsake's metadata, relative to the prefix and to a
// repository's directory.
const (
	StorageMetadataFile    = "metadata.yaml"
	RepositoryMetadataFile = "repository.yaml"
)

// Names restic gives the parts of a repository that mark a directory as
// one: its config object and its keys directory.
const (
	resticConfigFile = "config"
	resticKeysDir    = "keys"
)

// StorageMetadata is <prefix>/metadata.yaml: it marks the prefix as
// Keepsake storage and names the BackupStorage that wrote it.
type StorageMetadata struct {
	// Kind is always "BackupStorage".
	Kind string `yaml:"kind"`
	// Name and Namespace of the BackupStorage.
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
	// UID of the BackupStorage, to tell two clusters' storages apart.
	UID string `yaml:"uid,omitempty"`
	// Cluster is the UID of the writing cluster's kube-system namespace: a
	// BackupStorage re-created in the same cluster, namespace and name (a
	// namespace deleted and made again) is the same storage, and takes its
	// prefix back; one of another cluster is not.
	Cluster string `yaml:"cluster,omitempty"`
	// CreatedAt is when the metadata was first written.
	CreatedAt time.Time `yaml:"createdAt"`
}

// RepositoryMetadata is <prefix>/<namespace>/<dir>/repository.yaml, written
// beside the restic repository so that a storage attached to a new cluster
// can recreate its Repository objects.
type RepositoryMetadata struct {
	// Name and Namespace of the Repository object.
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
	// Path is the repository's directory below the namespace.
	Path string `yaml:"path"`
	// StorageRef names the BackupStorage, as "<namespace>/<name>".
	StorageRef string `yaml:"storageRef,omitempty"`
	// EncryptionSecret names the Secret holding the restic password (the
	// name only: never the password).
	EncryptionSecret string `yaml:"encryptionSecret,omitempty"`
	// AppRef names what is backed up, as "<kind>/<namespace>/<name>".
	AppRef string `yaml:"appRef,omitempty"`
	// CreatedAt is when the repository was first written.
	CreatedAt time.Time `yaml:"createdAt"`
}

// StoredRepository is a repository found under a prefix.
type StoredRepository struct {
	// Namespace and Dir locate it: <prefix>/<Namespace>/<Dir>.
	Namespace string
	Dir       string
	// Metadata is its repository.yaml.
	Metadata RepositoryMetadata
	// Bare says it is a restic repository without repository.yaml; its
	// Metadata then holds only Namespace and Path.
	Bare bool
}

// ReadStorageMetadata reads <prefix>/metadata.yaml; the error wraps
// ErrNotFound when it does not exist.
func ReadStorageMetadata(ctx context.Context, s Store) (*StorageMetadata, error) {
	var m StorageMetadata
	if err := readYAML(ctx, s, StorageMetadataFile, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// WriteStorageMetadata writes <prefix>/metadata.yaml.
func WriteStorageMetadata(ctx context.Context, s Store, m StorageMetadata) error {
	m.Kind = "BackupStorage"
	return writeYAML(ctx, s, StorageMetadataFile, m)
}

// ReadRepositoryMetadata reads <prefix>/<namespace>/<dir>/repository.yaml;
// the error wraps ErrNotFound when it does not exist.
func ReadRepositoryMetadata(ctx context.Context, s Store, namespace, dir string) (*RepositoryMetadata, error) {
	key, err := repositoryKey(namespace, dir)
	if err != nil {
		return nil, err
	}
	var m RepositoryMetadata
	if err := readYAML(ctx, s, path.Join(key, RepositoryMetadataFile), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// WriteRepositoryMetadata writes <prefix>/<namespace>/<dir>/repository.yaml.
func WriteRepositoryMetadata(ctx context.Context, s Store, namespace, dir string, m RepositoryMetadata) error {
	key, err := repositoryKey(namespace, dir)
	if err != nil {
		return err
	}
	return writeYAML(ctx, s, path.Join(key, RepositoryMetadataFile), m)
}

// ListRepositories finds every repository under the prefix, at any depth
// below its namespace. It walks directories level by level and does not
// descend into a repository once found, so restic's many data objects are
// never listed.
func ListRepositories(ctx context.Context, s Store) ([]StoredRepository, error) {
	_, namespaces, err := s.ListDir(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	var found []StoredRepository
	for _, ns := range namespaces {
		repos, err := findRepositories(ctx, s, ns, "")
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		found = append(found, repos...)
	}
	return found, nil
}

// findRepositories finds the repositories at or below dir of namespace ns.
func findRepositories(ctx context.Context, s Store, ns, dir string) ([]StoredRepository, error) {
	files, dirs, err := s.ListDir(ctx, path.Join(ns, dir))
	if err != nil {
		return nil, err
	}
	if dir != "" {
		if repo, ok, err := storedRepository(ctx, s, ns, dir, files, dirs); ok || err != nil {
			return []StoredRepository{repo}, err
		}
	}
	var found []StoredRepository
	for _, d := range dirs {
		repos, err := findRepositories(ctx, s, ns, path.Join(dir, d))
		if err != nil {
			return nil, err
		}
		found = append(found, repos...)
	}
	return found, nil
}

// isBareRepository reports whether a directory holding files and dirs is
// a restic repository: a config object and a keys directory.
func isBareRepository(files, dirs []string) bool {
	return slices.Contains(files, resticConfigFile) && slices.Contains(dirs, resticKeysDir)
}

// isRepositoryDir reports whether a directory holding files and dirs is a
// repository, with or without repository.yaml.
func isRepositoryDir(files, dirs []string) bool {
	return slices.Contains(files, RepositoryMetadataFile) || isBareRepository(files, dirs)
}

// storedRepository reports whether directory dir of ns, which holds files
// and dirs, is a repository: it has a repository.yaml, or it is a bare
// restic repository (a config file and a keys directory) that Keepsake
// did not write metadata for, such as one of a local storage.
func storedRepository(ctx context.Context, s Store, ns, dir string, files, dirs []string) (StoredRepository, bool, error) {
	repo := StoredRepository{Namespace: ns, Dir: dir}
	switch {
	case slices.Contains(files, RepositoryMetadataFile):
		m, err := ReadRepositoryMetadata(ctx, s, ns, dir)
		if err != nil {
			return repo, true, err
		}
		repo.Metadata = *m
		return repo, true, nil
	case isBareRepository(files, dirs):
		repo.Bare = true
		repo.Metadata = RepositoryMetadata{Namespace: ns, Path: dir}
		return repo, true, nil
	}
	return repo, false, nil
}

func readYAML(ctx context.Context, s Store, key string, v any) error {
	data, err := s.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", key, err)
	}
	return nil
}

func writeYAML(ctx context.Context, s Store, key string, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := s.Put(ctx, key, data); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}
