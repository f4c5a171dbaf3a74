package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// ResticTarget is what restic needs to reach one repository. It maps onto
// restic.Config's Repository, Env and ExtraArgs fields.
type ResticTarget struct {
	// Repository is restic's repository string: "s3:<endpoint>/<bucket>/
	// <prefix>/<namespace>/<dir>" or a local path.
	Repository string
	// Env holds the S3 credentials as KEY=VALUE, for restic's process
	// environment only. Never log it.
	Env []string
	// ExtraArgs holds restic options derived from the storage: --cacert,
	// --insecure-tls, -o s3.bucket-lookup=path, -o s3.region=...,
	// -o s3.connections=N.
	ExtraArgs []string
}

// String returns the repository string, leaving out the credentials.
func (t ResticTarget) String() string { return t.Repository }

// ResticRepository returns how restic reaches the repository in directory
// dir of namespace on the storage cfg describes. A CA bundle given as bytes
// (no CABundleFile) is written once to a file in os.TempDir (TMPDIR), named
// by its hash, because restic reads CAs from files only.
func ResticRepository(cfg Config, namespace, dir string) (ResticTarget, error) {
	if err := cfg.Validate(); err != nil {
		return ResticTarget{}, fmt.Errorf("restic repository: %w", err)
	}
	rel, err := repositoryKey(namespace, dir)
	if err != nil {
		return ResticTarget{}, fmt.Errorf("restic repository: %w", err)
	}
	if cfg.Provider == ProviderLocal {
		return ResticTarget{Repository: filepath.Join(cfg.Local.Path, filepath.FromSlash(rel))}, nil
	}
	key, _ := cleanKey(cfg.prefix(), rel) // both parts are already clean
	args, err := resticS3Args(cfg)
	if err != nil {
		return ResticTarget{}, fmt.Errorf("restic repository %s: %w", key, err)
	}
	return ResticTarget{
		Repository: "s3:" + resticEndpoint(cfg) + "/" + cfg.S3.Bucket + "/" + key,
		Env:        resticEnv(cfg.Credentials),
		ExtraArgs:  args,
	}, nil
}

// resticEndpoint is the endpoint as restic's s3 backend wants it: with its
// scheme (restic defaults to https) or the AWS host.
func resticEndpoint(cfg Config) string {
	if e := cfg.endpoint(); e != "" {
		return e
	}
	if cfg.S3.Region != "" || cfg.Credentials.Region != "" {
		return "s3." + cfg.region() + ".amazonaws.com"
	}
	return "s3.amazonaws.com"
}

func resticEnv(c Credentials) []string {
	env := []string{
		"AWS_ACCESS_KEY_ID=" + c.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey,
	}
	if c.SessionToken != "" {
		env = append(env, "AWS_SESSION_TOKEN="+c.SessionToken)
	}
	return env
}

func resticS3Args(cfg Config) ([]string, error) {
	var args []string
	if cfg.S3.ForcePathStyle {
		args = append(args, "-o", "s3.bucket-lookup=path")
	}
	if cfg.S3.Region != "" || cfg.Credentials.Region != "" {
		args = append(args, "-o", "s3.region="+cfg.region())
	}
	if cfg.S3.MaxConnections > 0 {
		args = append(args, "-o", "s3.connections="+strconv.Itoa(cfg.S3.MaxConnections))
	}
	if cfg.S3.InsecureTLS {
		args = append(args, "--insecure-tls")
	}
	ca, err := caBundleFile(cfg.S3)
	if err != nil {
		return nil, err
	}
	if ca != "" {
		args = append(args, "--cacert", ca)
	}
	return args, nil
}

// caBundleFile returns a file holding the configured CA bundle, writing the
// bundle bytes to the temporary directory when no file was given.
func caBundleFile(c S3Config) (string, error) {
	if c.CABundleFile != "" || len(c.CABundle) == 0 {
		return c.CABundleFile, nil
	}
	sum := sha256.Sum256(c.CABundle)
	p := filepath.Join(os.TempDir(), "keepsake-ca-"+hex.EncodeToString(sum[:8])+".pem")
	if existing, err := os.ReadFile(p); err == nil && string(existing) == string(c.CABundle) {
		return p, nil
	}
	f, err := os.CreateTemp(os.TempDir(), "keepsake-ca-*.tmp")
	if err != nil {
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	_, werr := f.Write(c.CABundle)
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	return p, nil
}
