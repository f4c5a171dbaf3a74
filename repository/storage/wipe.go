package storage

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
)

// DeleteRepository removes every object of repository dir in namespace:
// <prefix>/<namespace>/<dir>/..., its repository.yaml and its restic data,
// and returns how many objects it removed. The key is the one
// WriteRepositoryMetadata writes under, so a sibling such as <dir>2 is
// never touched.
func DeleteRepository(ctx context.Context, s Store, namespace, dir string) (int, error) {
	key, err := repositoryKey(namespace, dir)
	if err != nil {
		return 0, err
	}
	n, err := s.DeleteAll(ctx, key)
	if err != nil {
		return n, fmt.Errorf("delete repository %s: %w", key, err)
	}
	return n, nil
}

// RepositoriesInside finds the other repositories whose directory lies
// inside repository dir of namespace (dir "db" holds "db/logical"), at any
// depth: deleting dir would delete them too. It lists every directory
// below dir that is not itself a repository, restic's own included, which
// costs about what deleting dir does.
func RepositoriesInside(ctx context.Context, s Store, namespace, dir string) ([]StoredRepository, error) {
	key, err := repositoryKey(namespace, dir)
	if err != nil {
		return nil, err
	}
	dir = strings.TrimPrefix(key, namespace+"/")
	_, subdirs, err := s.ListDir(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("list repositories inside %s: %w", key, err)
	}
	var found []StoredRepository
	for _, d := range subdirs {
		repos, err := findRepositories(ctx, s, namespace, path.Join(dir, d))
		if err != nil {
			return nil, fmt.Errorf("list repositories inside %s: %w", key, err)
		}
		found = append(found, repos...)
	}
	return found, nil
}

// RepositoryAround returns the directory of the repository that repository
// dir of namespace would lie inside ("db" for "db/logical"), or "" when no
// parent directory inside the namespace is a repository: deleting that one
// would delete dir too.
func RepositoryAround(ctx context.Context, s Store, namespace, dir string) (string, error) {
	key, err := repositoryKey(namespace, dir)
	if err != nil {
		return "", err
	}
	dir = strings.TrimPrefix(key, namespace+"/")
	for parent := path.Dir(dir); parent != "."; parent = path.Dir(parent) {
		files, dirs, err := s.ListDir(ctx, path.Join(namespace, parent))
		if err != nil {
			return "", fmt.Errorf("look for a repository around %s: %w", key, err)
		}
		_, ok, err := storedRepository(ctx, s, namespace, parent, files, dirs)
		if err != nil || ok {
			return parent, err
		}
	}
	return "", nil
}

// StoragesInside returns the directories below the prefix, at any depth,
// that hold a metadata.yaml: the prefixes of other BackupStorages, which
// deleting the prefix would delete too. It does not descend into
// repositories.
func StoragesInside(ctx context.Context, s Store) ([]string, error) {
	_, dirs, err := s.ListDir(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list storages inside the prefix: %w", err)
	}
	var found []string
	for _, d := range dirs {
		inside, err := storagesAt(ctx, s, d)
		if err != nil {
			return nil, fmt.Errorf("list storages inside the prefix: %w", err)
		}
		found = append(found, inside...)
	}
	return found, nil
}

// storagesAt finds the directories at or below dir that hold a
// metadata.yaml, skipping repositories.
func storagesAt(ctx context.Context, s Store, dir string) ([]string, error) {
	files, dirs, err := s.ListDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	if slices.Contains(files, StorageMetadataFile) {
		return []string{dir}, nil
	}
	if isRepositoryDir(files, dirs) {
		return nil, nil
	}
	var found []string
	for _, d := range dirs {
		inside, err := storagesAt(ctx, s, path.Join(dir, d))
		if err != nil {
			return nil, err
		}
		found = append(found, inside...)
	}
	return found, nil
}
