package storage_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/keepsake-dev/keepsake/repository/internal/testrepo"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

// putAll writes a small object at each key.
func putAll(t *testing.T, ctx context.Context, s storage.Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := s.Put(ctx, k, []byte("x")); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
}

// exists reports whether an object is at key.
func exists(t *testing.T, ctx context.Context, s storage.Store, key string) bool {
	t.Helper()
	_, err := s.Get(ctx, key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get %s: %v", key, err)
	}
	return err == nil
}

func TestDeleteAll(t *testing.T) {
	for provider, s := range stores(t) {
		t.Run(provider, func(t *testing.T) {
			ctx := testContext(t)
			gone := []string{"ns/repo/config", "ns/repo/repository.yaml", "ns/repo/data/00/0011", "ns/repo/keys/k"}
			// Siblings sharing a string prefix, the directory's own name as a
			// file, and the root.
			kept := []string{"ns/repo2/config", "ns/repo.yaml", "ns/repository.yaml", "metadata.yaml", "other/repo/config"}
			putAll(t, ctx, s, append(gone, kept...)...)

			n, err := s.DeleteAll(ctx, "ns/repo")
			if err != nil || n != len(gone) {
				t.Fatalf("delete ns/repo: %d objects, %v; want %d", n, err, len(gone))
			}
			for _, k := range gone {
				if exists(t, ctx, s, k) {
					t.Errorf("%s is still there", k)
				}
			}
			for _, k := range kept {
				if !exists(t, ctx, s, k) {
					t.Errorf("%s was deleted", k)
				}
			}
			if n, err := s.DeleteAll(ctx, "ns/repo"); n != 0 || err != nil {
				t.Errorf("delete again: %d objects, %v; want 0, nil", n, err)
			}
		})
	}
}

// TestDeleteAllRefusesRoot checks that neither store empties its root:
// an S3 store without prefix, a local store at all.
func TestDeleteAllRefusesRoot(t *testing.T) {
	env := testrepo.Start(t)
	noPrefix := env.Storage
	noPrefix.S3.Prefix = "/"
	s3, err := storage.Open(noPrefix)
	if err != nil {
		t.Fatal(err)
	}
	local, err := storage.Open(storage.Config{Provider: storage.ProviderLocal, Local: storage.LocalConfig{Path: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	for provider, s := range map[string]storage.Store{"s3": s3, "local": local} {
		t.Run(provider, func(t *testing.T) {
			ctx := testContext(t)
			putAll(t, ctx, s, "metadata.yaml", "ns/repo/config")
			for _, dir := range []string{"", "/", ".", "ns/.."} {
				if n, err := s.DeleteAll(ctx, dir); err == nil || n != 0 {
					t.Errorf("delete %q: %d objects, %v; want 0 and an error", dir, n, err)
				} else if dir != "ns/.." && !errors.Is(err, storage.ErrWholeStorage) {
					t.Errorf("delete %q: %v, want ErrWholeStorage", dir, err)
				}
			}
			for _, k := range []string{"metadata.yaml", "ns/repo/config"} {
				if !exists(t, ctx, s, k) {
					t.Errorf("%s was deleted", k)
				}
			}
		})
	}
}

// TestDeleteAllPrefix checks that an S3 store with a prefix deletes
// everything under the prefix when asked for its root, and more than one
// page of objects, while the objects beside the prefix stay.
func TestDeleteAllPrefix(t *testing.T) {
	env := testrepo.Start(t)
	ctx := testContext(t)
	s, err := storage.Open(env.Storage) // prefix "backups"
	if err != nil {
		t.Fatal(err)
	}
	outside := env.Storage
	outside.S3.Prefix = ""
	root, err := storage.Open(outside)
	if err != nil {
		t.Fatal(err)
	}
	const many = 1234 // more than one page of ListObjectsV2 and DeleteObjects
	keys := []string{"metadata.yaml"}
	for i := range many {
		keys = append(keys, fmt.Sprintf("ns/repo/data/%02x/%04d", i%256, i))
	}
	putParallel(t, ctx, s, keys)
	putAll(t, ctx, root, "backups2/metadata.yaml", "backups.yaml", "top")

	n, err := s.DeleteAll(ctx, "")
	if err != nil || n != len(keys) {
		t.Fatalf("delete the prefix: %d objects, %v; want %d", n, err, len(keys))
	}
	if files, dirs, err := s.ListDir(ctx, ""); err != nil || len(files)+len(dirs) != 0 {
		t.Errorf("prefix after delete: files %v dirs %v, %v; want nothing", files, dirs, err)
	}
	for _, k := range []string{"backups2/metadata.yaml", "backups.yaml", "top"} {
		if !exists(t, ctx, root, k) {
			t.Errorf("%s outside the prefix was deleted", k)
		}
	}
}

// putParallel writes a small object at each key, a few at a time.
func putParallel(t *testing.T, ctx context.Context, s storage.Store, keys []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	sem := make(chan struct{}, 16)
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs <- s.Put(ctx, k, []byte("x"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("put: %v", err)
		}
	}
}

// TestDeleteRepository checks that a repository goes with its
// repository.yaml and its data, and that the repositories inside one are
// found before.
func TestDeleteRepository(t *testing.T) {
	for provider, s := range stores(t) {
		t.Run(provider, func(t *testing.T) {
			ctx := testContext(t)
			for _, dir := range []string{"db", "db/inner/deep", "db2"} {
				m := storage.RepositoryMetadata{Name: dir, Namespace: "team", Path: dir}
				if err := storage.WriteRepositoryMetadata(ctx, s, "team", dir, m); err != nil {
					t.Fatal(err)
				}
			}
			putAll(t, ctx, s, "team/db/config", "team/db/data/00/0011", "team/db2/config")

			inside, err := storage.RepositoriesInside(ctx, s, "team", "db")
			if err != nil || len(inside) != 1 || inside[0].Dir != "db/inner/deep" {
				t.Fatalf("repositories inside db: %+v, %v; want db/inner/deep", inside, err)
			}
			if inside, err := storage.RepositoriesInside(ctx, s, "team", "db2"); err != nil || len(inside) != 0 {
				t.Fatalf("repositories inside db2: %+v, %v; want none", inside, err)
			}
			n, err := storage.DeleteRepository(ctx, s, "team", "db")
			if err != nil || n != 4 {
				t.Fatalf("delete db: %d objects, %v; want 4", n, err)
			}
			for _, k := range []string{"team/db2/config", "team/db2/repository.yaml"} {
				if !exists(t, ctx, s, k) {
					t.Errorf("%s was deleted", k)
				}
			}
			for _, bad := range [][2]string{{"", "db"}, {"team", ""}, {"team", "../other"}, {"a/b", "db"}} {
				if _, err := storage.DeleteRepository(ctx, s, bad[0], bad[1]); err == nil {
					t.Errorf("delete repository %q in %q: no error", bad[1], bad[0])
				}
			}
		})
	}
}

// TestRepositoriesNestedAtAnyDepth checks that a repository inside
// another is found however deep it lies, also when it is a bare restic
// repository without repository.yaml, and that the repository a directory
// lies inside is found too: wiping either would delete the other.
func TestRepositoriesNestedAtAnyDepth(t *testing.T) {
	for provider, s := range stores(t) {
		t.Run(provider, func(t *testing.T) {
			ctx := testContext(t)
			deep := "db/a/b/c/d/e/f"
			for _, dir := range []string{"db", deep} {
				m := storage.RepositoryMetadata{Name: dir, Namespace: "team", Path: dir}
				if err := storage.WriteRepositoryMetadata(ctx, s, "team", dir, m); err != nil {
					t.Fatal(err)
				}
			}
			putAll(t, ctx, s, "team/db/config", "team/db/keys/k1", "team/db/data/00/0011",
				"team/db/x/y/z/bare/config", "team/db/x/y/z/bare/keys/k1", "team/db/x/y/z/bare/data/01/0122",
				"team/other/config", "team/other/keys/k1")

			inside, err := storage.RepositoriesInside(ctx, s, "team", "db")
			if err != nil {
				t.Fatal(err)
			}
			var dirs []string
			for _, r := range inside {
				dirs = append(dirs, r.Dir)
			}
			slices.Sort(dirs)
			if want := []string{deep, "db/x/y/z/bare"}; !slices.Equal(dirs, want) {
				t.Errorf("repositories inside db: %v; want %v", dirs, want)
			}
			for dir, want := range map[string]string{deep + "/g": deep, "db/x/y/z/bare/q": "db/x/y/z/bare", "db/new": "db", "new/db": "", "other2": ""} {
				got, err := storage.RepositoryAround(ctx, s, "team", dir)
				if err != nil || got != want {
					t.Errorf("repository around %s: %q, %v; want %q", dir, got, err, want)
				}
			}
		})
	}
}
