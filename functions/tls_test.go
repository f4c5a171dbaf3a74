package functions

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepsake-dev/keepsake/repository/storage"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// TestStorageWithPrivateCA: against a MinIO serving TLS with a private CA,
// the runtime trusts the CA bundle file its settings name (caBundleFile, as
// the operator writes it into a Job) on both of its paths to the storage:
// restic (--cacert) and the aws-sdk S3 client. Without the file, the S3
// client refuses the certificate: the bundle is what makes it work.
func TestStorageWithPrivateCA(t *testing.T) {
	m := servers.StartMinIOTLS(t)
	m.CreateBucket(t, "backups")
	s := &stand{minio: m, dir: t.TempDir()}
	caFile := s.file(t, "ca.pem", string(m.CAPEM))
	s.creds = s.secret(t, "storage-secret", map[string]string{"AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": m.SecretKey})
	settings := `{"provider":"s3","s3":{"endpoint":%q,"bucket":"backups","prefix":"keepsake","forcePathStyle":true%s}}`

	s.storage = s.file(t, "storage.json", fmt.Sprintf(settings, m.Endpoint, fmt.Sprintf(`,"caBundleFile":%q`, caFile)))
	spec := s.repo(t, "tls")
	ids := backups(t, s.resticRepo(t, spec), 2) // restic init and backup through TLS
	out, _ := keepsake(t, 0, nil, "run", "forget", "--repository", specFlag(spec), "--restic", servers.Bin(t, "restic"),
		"--snapshot-id", ids[0], "--cache-dir", filepath.Join(s.dir, "cache"))
	if res := event[ForgetResult](t, out, "forget"); len(res.Forgotten) != 1 {
		t.Fatalf("keepsake run forget through TLS: %+v", res)
	}

	cfg, err := spec.storageConfig()
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := storage.ListRepositories(context.Background(), store)
	if err != nil {
		t.Fatalf("aws-sdk client with the CA bundle: %v", err)
	}
	t.Logf("repositories seen through the S3 client: %+v", repos)
	cfg.S3.CABundleFile = ""
	untrusted, err := storage.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.ListRepositories(context.Background(), untrusted); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("S3 client without the CA bundle: %v, want a certificate error", err)
	}
}
