// Package testrepo sets up restic repositories on a MinIO started for a test,
// and makes deterministic test data, for the tests and benchmarks of the
// repository packages.
package testrepo

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// Bucket is the bucket Start creates.
const Bucket = "keepsake"

// Env is a MinIO with one bucket and the storage config that reaches it.
type Env struct {
	MinIO   *servers.MinIO
	Storage storage.Config
}

// Start starts MinIO, creates Bucket and returns a storage config for it
// with the prefix "backups".
func Start(t testing.TB) *Env {
	t.Helper()
	m := servers.StartMinIO(t)
	m.CreateBucket(t, Bucket)
	return &Env{MinIO: m, Storage: storage.Config{
		Provider: storage.ProviderS3,
		S3: storage.S3Config{
			Endpoint: m.Endpoint, Bucket: Bucket, Prefix: "backups", ForcePathStyle: true,
		},
		Credentials: storage.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey},
	}}
}

// Config returns a restic config for repository dir of namespace "test",
// with its own password file (password "secret-<dir>") and cache dir.
func (e *Env) Config(t testing.TB, dir string) restic.Config {
	t.Helper()
	target, err := storage.ResticRepository(e.Storage, "test", dir)
	if err != nil {
		t.Fatalf("restic repository: %v", err)
	}
	return restic.Config{
		Binary:       servers.Bin(t, "restic"),
		Repository:   target.Repository,
		PasswordFile: PasswordFile(t, "secret-"+dir),
		Env:          target.Env,
		CacheDir:     t.TempDir(),
		ExtraArgs:    target.ExtraArgs,
	}
}

// PasswordFile writes password to a 0400 file in a temporary directory.
func PasswordFile(t testing.TB, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(password), 0o400); err != nil {
		t.Fatalf("write password file: %v", err)
	}
	return p
}

// Stream returns size bytes of deterministic, incompressible data: the same
// seed gives the same bytes, without holding them in memory.
func Stream(seed uint64, size int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// StreamHash returns the hex SHA-256 of Stream(seed, size).
func StreamHash(t testing.TB, seed uint64, size int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, Stream(seed, size)); err != nil {
		t.Fatalf("hash stream: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
