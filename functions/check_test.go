package functions

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/test/servers"
)

// localRepo initialises a restic repository in a temporary directory and
// returns its spec and a Repo for it.
func localRepo(t *testing.T, name string) (RepositorySpec, *restic.Repo) {
	t.Helper()
	dir := t.TempDir()
	spec := RepositorySpec{Name: name, Restic: filepath.Join(dir, "repo"), PasswordFile: filepath.Join(dir, "pw")}
	if err := os.WriteFile(spec.PasswordFile, []byte("pw-"+name), 0o400); err != nil {
		t.Fatal(err)
	}
	rc, err := spec.resticConfig(servers.Bin(t, "restic"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo := restic.New(rc)
	if err := repo.InitIfAbsent(context.Background()); err != nil {
		t.Fatal(err)
	}
	return spec, repo
}

// createRepositoryObject creates the Repository object name in default.
func createRepositoryObject(t *testing.T, c client.Client, name string) {
	t.Helper()
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: storagev1alpha1.RepositorySpec{
			StorageRef: storagev1alpha1.ObjectReference{Name: "storage"}, Path: "db/" + name,
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: "pw"},
		},
	}
	if err := c.Create(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
}

func getRepositoryObject(t *testing.T, c client.Client, name string) *storagev1alpha1.Repository {
	t.Helper()
	repo := &storagev1alpha1.Repository{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, repo); err != nil {
		t.Fatal(err)
	}
	return repo
}

// corruptPacks overwrites bytes in the middle of every data pack of the
// local repository at dir, as failing disks or a broken backend would.
func corruptPacks(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := os.Chmod(p, 0o600); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		n++
		_, err = f.WriteAt(bytes.Repeat([]byte{'X'}, 64), 100)
		return err
	})
	if err != nil || n == 0 {
		t.Fatalf("corrupt packs: %d corrupted, %v", n, err)
	}
}

// TestCheckRecordsTheVerdict runs the check task against a real restic
// repository and a kube-apiserver: an intact repository passes, with the
// stored size recorded; the same repository with its packs corrupted by
// hand fails, naming the damaged pack; a check that cannot open the
// repository is an Error that leaves status.integrity as it was.
func TestCheckRecordsTheVerdict(t *testing.T) {
	c, _ := startKube(t)
	spec, repo := localRepo(t, "checked")
	if _, err := repo.Backup(context.Background(), io.LimitReader(rand.NewChaCha8([32]byte{1}), 300<<10), restic.BackupOptions{Filename: "dump"}, nil); err != nil {
		t.Fatal(err)
	}
	createRepositoryObject(t, c, "checked")
	cfg := CheckConfig{
		Repository: spec, ReadDataSubset: "100%", Restic: servers.Bin(t, "restic"), CacheDir: t.TempDir(),
		Job: "check-checked", Request: "r1", Reporter: NewRepositoryStatusReporter(c, "default"),
	}

	if err := RunCheck(context.Background(), cfg); err != nil {
		t.Fatalf("check of an intact repository: %v", err)
	}
	st := getRepositoryObject(t, c, "checked").Status
	ic := st.IntegrityCheck
	if ic == nil || ic.Result != storagev1alpha1.IntegrityPassed || st.Integrity == nil || !*st.Integrity ||
		ic.LastCheckTime == nil || ic.Job != "check-checked" || ic.Request != "r1" || ic.ReadDataSubset != "100%" {
		t.Fatalf("status after a passing check: integrity %v, integrityCheck %+v", st.Integrity, ic)
	}
	if st.SizeBytes < 300<<10 || st.SizeBytes > 400<<10 || st.Size == "" {
		t.Fatalf("stored size %d (%q): want about the 300 KiB of incompressible data", st.SizeBytes, st.Size)
	}

	corruptPacks(t, spec.Restic)
	cfg.Request = ""
	if err := RunCheck(context.Background(), cfg); err != nil {
		t.Fatalf("check of a damaged repository: %v, want the damage recorded, not a Job failure", err)
	}
	st = getRepositoryObject(t, c, "checked").Status
	ic = st.IntegrityCheck
	if ic == nil || ic.Result != storagev1alpha1.IntegrityFailed || st.Integrity == nil || *st.Integrity ||
		!strings.HasPrefix(ic.Message, "restic check found damage: ") || !strings.Contains(ic.Message, "pack ") || ic.Request != "" {
		t.Fatalf("status after a failing check: integrity %v, integrityCheck %+v", st.Integrity, ic)
	}

	cfg.Repository.PasswordFile = filepath.Join(t.TempDir(), "missing")
	if err := RunCheck(context.Background(), cfg); err == nil {
		t.Fatal("check without a password file succeeded")
	}
	st = getRepositoryObject(t, c, "checked").Status
	if ic = st.IntegrityCheck; ic == nil || ic.Result != storagev1alpha1.IntegrityError || st.Integrity == nil || *st.Integrity {
		t.Fatalf("status after a check that could not run: integrity %v, integrityCheck %+v; want Error, integrity still false", st.Integrity, ic)
	}
}
