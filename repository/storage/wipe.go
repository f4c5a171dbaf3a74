package storage

import (
	"context"
	"fmt"
	"path"
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
// inside repository dir of namespace (dir "db" holds "db/logical"), as
// deep as ListRepositories looks: deleting dir would delete them too.
func RepositoriesInside(ctx context.Context, s Store, namespace, dir string) ([]StoredRepository, error) {
	key, err := repositoryKey(namespace, dir)
	if err != nil {
		return nil, err
	}
	dir = strings.TrimPrefix(key, namespace+"/")
	depth := maxRepositoryDepth - 2 - strings.Count(dir, "/") // as findRepositories counts for dir/<sub>
	if depth <= 0 {
		return nil, nil
	}
	_, subdirs, err := s.ListDir(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("list repositories inside %s: %w", key, err)
	}
	var found []StoredRepository
	for _, d := range subdirs {
		repos, err := findRepositories(ctx, s, namespace, path.Join(dir, d), depth)
		if err != nil {
			return nil, fmt.Errorf("list repositories inside %s: %w", key, err)
		}
		found = append(found, repos...)
	}
	return found, nil
}
