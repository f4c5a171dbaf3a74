package functions

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keepsake-dev/keepsake/repository/restic"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

// RepositorySpec says where one restic repository is and how to open it.
// The Job passes it as --repository key=value,key=value:
//
//	name=primary,storage=/keepsake/storage/primary/storage.json,
//	credentials=/keepsake/storage/primary/secret,namespace=prod,
//	directory=db/primary,password-file=/keepsake/repos/primary/password
//
// or, for a repository string given directly (local use, tests):
//
//	name=local,restic=/backups/db,password-file=/path/to/password
type RepositorySpec struct {
	// Name is the repository's name (the Repository object's).
	Name string
	// Restic is a restic repository string, used as is.
	Restic string
	// StorageFile is a JSON file with the storage settings (see
	// storage.Settings); with Namespace and Directory it locates the
	// repository as repository/storage does.
	StorageFile string
	// CredentialsDir is the storage Secret mounted as a directory; its keys
	// are read as repository/storage reads a Secret's data.
	CredentialsDir string
	// Namespace and Directory place the repository inside the storage.
	Namespace, Directory string
	// PasswordFile holds the repository's password.
	PasswordFile string
}

// specKeys maps each key of a --repository value to its field.
var specKeys = map[string]func(*RepositorySpec) *string{
	"name":          func(s *RepositorySpec) *string { return &s.Name },
	"restic":        func(s *RepositorySpec) *string { return &s.Restic },
	"storage":       func(s *RepositorySpec) *string { return &s.StorageFile },
	"credentials":   func(s *RepositorySpec) *string { return &s.CredentialsDir },
	"namespace":     func(s *RepositorySpec) *string { return &s.Namespace },
	"directory":     func(s *RepositorySpec) *string { return &s.Directory },
	"password-file": func(s *RepositorySpec) *string { return &s.PasswordFile },
}

// ParseRepositorySpec parses the value of a --repository flag.
func ParseRepositorySpec(value string) (RepositorySpec, error) {
	var spec RepositorySpec
	for _, pair := range strings.Split(value, ",") {
		key, val, ok := strings.Cut(pair, "=")
		field, known := specKeys[strings.TrimSpace(key)]
		if !ok || !known {
			return spec, fmt.Errorf("repository %q: %q is not one of name=, restic=, storage=, credentials=, namespace=, directory=, password-file=", value, pair)
		}
		*field(&spec) = strings.TrimSpace(val)
	}
	return spec, spec.validate()
}

func (s RepositorySpec) validate() error {
	var problems []string
	if s.Name == "" {
		problems = append(problems, "no name")
	}
	if s.PasswordFile == "" {
		problems = append(problems, "no password-file")
	}
	switch {
	case (s.Restic == "") == (s.StorageFile == ""):
		problems = append(problems, "exactly one of restic and storage is needed")
	case s.StorageFile != "" && (s.Namespace == "" || s.Directory == ""):
		problems = append(problems, "storage needs namespace and directory")
	}
	if len(problems) > 0 {
		return fmt.Errorf("repository %s: %s", s.Name, strings.Join(problems, "; "))
	}
	return nil
}

// lockWait is how long restic waits for another Job's lock on the same
// repository (a retention prune, a concurrent backup) before failing; the
// Job's own deadline bounds it too.
const lockWait = 10 * time.Minute

// resticConfig resolves the spec into what the restic wrapper needs.
func (s RepositorySpec) resticConfig(binary, cacheDir string) (restic.Config, error) {
	cfg := restic.Config{Binary: binary, Repository: s.Restic, PasswordFile: s.PasswordFile, CacheDir: cacheDir,
		RetryLock: lockWait}
	if s.StorageFile == "" {
		return cfg, nil
	}
	sc, err := s.storageConfig()
	if err != nil {
		return cfg, fmt.Errorf("repository %s: %w", s.Name, err)
	}
	target, err := storage.ResticRepository(sc, s.Namespace, s.Directory)
	if err != nil {
		return cfg, fmt.Errorf("repository %s: %w", s.Name, err)
	}
	cfg.Repository, cfg.Env, cfg.ExtraArgs = target.Repository, target.Env, target.ExtraArgs
	return cfg, nil
}

func (s RepositorySpec) storageConfig() (storage.Config, error) {
	data, err := os.ReadFile(s.StorageFile)
	if err != nil {
		return storage.Config{}, fmt.Errorf("read storage settings: %w", err)
	}
	var set storage.Settings
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&set); err != nil {
		return storage.Config{}, fmt.Errorf("storage settings %s: %w", s.StorageFile, err)
	}
	cfg := storage.Config{Provider: storage.Provider(set.Provider), Local: storage.LocalConfig{Path: set.Local.Path}}
	cfg.S3 = storage.S3Config{
		Endpoint: set.S3.Endpoint, Bucket: set.S3.Bucket, Prefix: set.S3.Prefix, Region: set.S3.Region,
		ForcePathStyle: set.S3.ForcePathStyle, InsecureTLS: set.S3.InsecureTLS,
		CABundleFile: set.S3.CABundleFile, MaxConnections: set.S3.MaxConnections,
	}
	if cfg.Provider == storage.ProviderS3 {
		if cfg.Credentials, err = readCredentials(s.CredentialsDir); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// readCredentials reads a Secret mounted as a directory: one file per key,
// skipping the ..data links and other dot entries Kubernetes adds.
func readCredentials(dir string) (storage.Credentials, error) {
	if dir == "" {
		return storage.Credentials{}, errors.New("s3 storage needs credentials=<mounted secret directory>")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return storage.Credentials{}, fmt.Errorf("read storage credentials: %w", err)
	}
	data := map[string][]byte{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		if data[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
			return storage.Credentials{}, fmt.Errorf("read storage credentials: %w", err)
		}
	}
	creds, err := storage.CredentialsFromSecretData(data)
	if err != nil {
		return creds, fmt.Errorf("storage credentials in %s: %w", dir, err)
	}
	return creds, nil
}
