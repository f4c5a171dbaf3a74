// Package storage reaches the object storage a BackupStorage names (an S3
// bucket and prefix, or a local directory): it checks that the storage is
// usable, reads and writes Keepsake's metadata files there, finds the
// repositories stored under a prefix, and tells restic where a repository is.
package storage

import (
	"errors"
	"fmt"
	"strings"
)

// Provider names the kind of storage behind a Config.
type Provider string

const (
	// ProviderS3 is an S3-compatible object store (AWS, MinIO, Ceph, ...).
	ProviderS3 Provider = "s3"
	// ProviderLocal is a directory on a mounted file system.
	ProviderLocal Provider = "local"
)

// Config mirrors a BackupStorage spec with its Secret and CA bundle resolved.
type Config struct {
	// Provider selects S3 or Local.
	Provider Provider
	// S3 is used when Provider is ProviderS3.
	S3 S3Config
	// Local is used when Provider is ProviderLocal.
	Local LocalConfig
	// Credentials authenticate to S3; ignored for local storage.
	Credentials Credentials
}

// S3Config locates a bucket and a prefix inside it.
type S3Config struct {
	// Endpoint is the server URL, e.g. "https://minio.example:9000"; a bare
	// host gets "https://". Empty means AWS (regional endpoint).
	Endpoint string
	// Bucket must exist: Keepsake never creates buckets.
	Bucket string
	// Prefix is the folder inside the bucket that holds Keepsake's data.
	Prefix string
	// Region defaults to Credentials.Region, then "us-east-1".
	Region string
	// ForcePathStyle addresses the bucket as <endpoint>/<bucket> rather
	// than <bucket>.<endpoint> (needed by most S3-compatible servers).
	ForcePathStyle bool
	// InsecureTLS skips certificate verification; only when a user asks.
	InsecureTLS bool
	// CABundle holds PEM certificates trusted in addition to the system's.
	CABundle []byte
	// CABundleFile is the path of a mounted PEM file; it wins over CABundle
	// for restic and is read for the S3 client when CABundle is empty.
	CABundleFile string
	// MaxConnections limits concurrent connections; 0 keeps the defaults.
	MaxConnections int
}

// LocalConfig locates a directory holding Keepsake's data.
type LocalConfig struct {
	// Path is an absolute directory, typically a mounted volume.
	Path string
}

// Credentials are the S3 access keys from a BackupStorage's Secret. They are
// never logged and reach restic only through its process environment.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is set for temporary credentials (STS); usually empty.
	SessionToken string
	// Region and Endpoint fill S3Config fields the spec leaves empty.
	Region   string
	Endpoint string
}

// secretKeys lists, per Credentials field, the Secret keys accepted for it
// in order of preference.
var secretKeys = map[string][]string{
	"access":   {"AWS_ACCESS_KEY_ID", "access_key_id"},
	"secret":   {"AWS_SECRET_ACCESS_KEY", "secret_access_key"},
	"token":    {"AWS_SESSION_TOKEN", "session_token"},
	"region":   {"AWS_REGION", "AWS_DEFAULT_REGION", "region"},
	"endpoint": {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "endpoint"},
}

// ErrMissingCredentials reports a Secret without an access key pair.
var ErrMissingCredentials = errors.New("secret has no access key id and secret access key")

// CredentialsFromSecretData reads credentials from a Secret's data. It
// accepts AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (optional AWS_REGION,
// AWS_ENDPOINT_URL, AWS_SESSION_TOKEN) and access_key_id /
// secret_access_key. Surrounding white space (a trailing newline from
// `kubectl create secret --from-file`) is dropped.
func CredentialsFromSecretData(data map[string][]byte) (Credentials, error) {
	c := Credentials{
		AccessKeyID:     secretValue(data, "access"),
		SecretAccessKey: secretValue(data, "secret"),
		SessionToken:    secretValue(data, "token"),
		Region:          secretValue(data, "region"),
		Endpoint:        secretValue(data, "endpoint"),
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return Credentials{}, ErrMissingCredentials
	}
	return c, nil
}

func secretValue(data map[string][]byte, field string) string {
	for _, k := range secretKeys[field] {
		if v := strings.TrimSpace(string(data[k])); v != "" {
			return v
		}
	}
	return ""
}

// Validate reports a Config that cannot describe any storage.
func (c Config) Validate() error {
	switch c.Provider {
	case ProviderS3:
		if c.S3.Bucket == "" {
			return errors.New("s3 storage needs a bucket")
		}
		if c.S3.MaxConnections < 0 {
			return fmt.Errorf("s3 maxConnections %d is negative", c.S3.MaxConnections)
		}
	case ProviderLocal:
		if !strings.HasPrefix(c.Local.Path, "/") {
			return fmt.Errorf("local storage path %q is not absolute", c.Local.Path)
		}
	default:
		return fmt.Errorf("unknown storage provider %q", c.Provider)
	}
	return nil
}

// endpoint returns the S3 endpoint URL with a scheme, or "" for AWS.
func (c Config) endpoint() string {
	e := c.S3.Endpoint
	if e == "" {
		e = c.Credentials.Endpoint
	}
	e = strings.TrimSuffix(e, "/")
	if e != "" && !strings.Contains(e, "://") {
		e = "https://" + e
	}
	return e
}

// region returns the S3 region, defaulting to us-east-1 (which MinIO and
// most S3-compatible servers accept).
func (c Config) region() string {
	switch {
	case c.S3.Region != "":
		return c.S3.Region
	case c.Credentials.Region != "":
		return c.Credentials.Region
	}
	return "us-east-1"
}

// prefix returns the prefix without leading or trailing slashes.
func (c Config) prefix() string {
	return strings.Trim(c.S3.Prefix, "/")
}
