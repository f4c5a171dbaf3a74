package storage_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/repository/internal/testrepo"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// policyOn returns an IAM policy document allowing actions on bucket.
func policyOn(bucket string, actions ...string) string {
	quoted := ""
	for i, a := range actions {
		if i > 0 {
			quoted += ","
		}
		quoted += `"` + a + `"`
	}
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[` + quoted +
		`],"Resource":["arn:aws:s3:::` + bucket + `","arn:aws:s3:::` + bucket + `/*"]}]}`
}

func TestCheckS3(t *testing.T) {
	env := testrepo.Start(t)
	env.MinIO.CreateBucket(t, "elsewhere")
	listOnly := credentialsFor(t, env, policyOn(testrepo.Bucket, "s3:ListBucket"))
	otherBucket := credentialsFor(t, env, policyOn("elsewhere", "s3:*"))

	tests := map[string]struct {
		// change turns the working config into the one under test.
		change func(c *storage.Config)
		// want is the error kind Check returns; nil for success.
		want error
	}{
		"usable":            {change: func(*storage.Config) {}},
		"bucket missing":    {change: func(c *storage.Config) { c.S3.Bucket = "missing" }, want: storage.ErrBucketNotFound},
		"wrong secret":      {change: func(c *storage.Config) { c.Credentials.SecretAccessKey = "wrong-secret-key" }, want: storage.ErrInvalidCredentials},
		"unknown key id":    {change: func(c *storage.Config) { c.Credentials.AccessKeyID = "nobody" }, want: storage.ErrInvalidCredentials},
		"cannot write":      {change: func(c *storage.Config) { c.Credentials = listOnly }, want: storage.ErrAccessDenied},
		"no bucket access":  {change: func(c *storage.Config) { c.Credentials = otherBucket }, want: storage.ErrAccessDenied},
		"nothing listening": {change: func(c *storage.Config) { c.S3.Endpoint = "http://" + closedAddress(t) }, want: storage.ErrUnreachable},
		"unknown host":      {change: func(c *storage.Config) { c.S3.Endpoint = "http://no-such-host.invalid:9000" }, want: storage.ErrUnreachable},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := env.Storage
			tc.change(&cfg)
			s, err := storage.Open(cfg)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			err = s.Check(testContext(t))
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("check: got %v, want %v", err, tc.want)
			}
		})
	}
	s, _ := storage.Open(env.Storage)
	if files, _, err := s.ListDir(testContext(t), ""); err != nil || len(files) != 0 {
		t.Fatalf("after checks: files %v, %v; want every probe removed", files, err)
	}
}

func credentialsFor(t *testing.T, env *testrepo.Env, policy string) storage.Credentials {
	ak, sk, token := env.MinIO.TemporaryCredentials(t, policy)
	return storage.Credentials{AccessKeyID: ak, SecretAccessKey: sk, SessionToken: token}
}

// closedAddress returns a loopback address nothing listens on.
func closedAddress(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestCheckLocal(t *testing.T) {
	dir := t.TempDir()
	ok, _ := storage.Open(storage.Config{Provider: storage.ProviderLocal, Local: storage.LocalConfig{Path: dir}})
	if err := ok.Check(testContext(t)); err != nil {
		t.Fatalf("check an existing directory: %v", err)
	}
	if files, _, err := ok.ListDir(testContext(t), ""); err != nil || len(files) != 0 {
		t.Fatalf("after check: files %v, %v; want the probe removed", files, err)
	}
	missing, _ := storage.Open(storage.Config{Provider: storage.ProviderLocal, Local: storage.LocalConfig{Path: filepath.Join(dir, "nope")}})
	if err := missing.Check(testContext(t)); !errors.Is(err, storage.ErrBucketNotFound) {
		t.Fatalf("check a missing directory: got %v, want ErrBucketNotFound", err)
	}
}

// stores returns one store of each provider.
func stores(t *testing.T) map[string]storage.Store {
	env := testrepo.Start(t)
	s3, err := storage.Open(env.Storage)
	if err != nil {
		t.Fatal(err)
	}
	local, err := storage.Open(storage.Config{Provider: storage.ProviderLocal, Local: storage.LocalConfig{Path: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]storage.Store{"s3": s3, "local": local}
}

func TestMetadataRoundTrip(t *testing.T) {
	for provider, s := range stores(t) {
		t.Run(provider, func(t *testing.T) {
			ctx := testContext(t)
			if _, err := storage.ReadStorageMetadata(ctx, s); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("read before write: got %v, want ErrNotFound", err)
			}
			want := storage.StorageMetadata{Kind: "BackupStorage", Name: "s3", Namespace: "ops", UID: "u-1",
				CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
			if err := storage.WriteStorageMetadata(ctx, s, want); err != nil {
				t.Fatalf("write: %v", err)
			}
			got, err := storage.ReadStorageMetadata(ctx, s)
			if err != nil || *got != want {
				t.Fatalf("read back %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestListRepositories(t *testing.T) {
	for provider, s := range stores(t) {
		t.Run(provider, func(t *testing.T) {
			ctx := testContext(t)
			repos := map[string][2]string{"a": {"team-a", "influx"}, "b": {"team-a", "nested/deeper"}, "c": {"team-b", "pg"}}
			for name, loc := range repos {
				m := storage.RepositoryMetadata{Name: name, Namespace: loc[0], Path: loc[1], EncryptionSecret: "pw",
					CreatedAt: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)}
				if err := storage.WriteRepositoryMetadata(ctx, s, loc[0], loc[1], m); err != nil {
					t.Fatalf("write %s: %v", name, err)
				}
			}
			// Objects that are not repositories, and restic data inside one.
			for _, key := range []string{"team-a/junk/file", "team-b/pg/data/00/0011", "stray"} {
				if err := s.Put(ctx, key, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := storage.WriteStorageMetadata(ctx, s, storage.StorageMetadata{Name: "s"}); err != nil {
				t.Fatal(err)
			}

			found, err := storage.ListRepositories(ctx, s)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			var got []string
			for _, r := range found {
				got = append(got, r.Metadata.Name+"@"+r.Namespace+"/"+r.Dir)
			}
			slices.Sort(got)
			want := []string{"a@team-a/influx", "b@team-a/nested/deeper", "c@team-b/pg"}
			if !slices.Equal(got, want) {
				t.Fatalf("repositories %v, want %v", got, want)
			}
			m, err := storage.ReadRepositoryMetadata(ctx, s, "team-a", "nested/deeper")
			if err != nil || m.Name != "b" || m.Path != "nested/deeper" || m.EncryptionSecret != "pw" {
				t.Fatalf("read repository.yaml: %+v, %v", m, err)
			}
		})
	}
}
