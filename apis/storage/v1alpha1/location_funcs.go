package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"path"
	"strings"
)

// Location is where a BackupStorage keeps its data, spelled so that two
// spellings of one place compare equal: "s3://<host>/<bucket>/<prefix>" for
// S3 (the endpoint's host lowercased, without its default port; "aws" for
// the empty endpoint) and "local://<namespace>/<name>/<subPath>" for a
// local volume, which the operator cannot look into and so knows only by
// its BackupStorage.
func (bs *BackupStorage) Location() string {
	sb := bs.Spec.Storage
	if sb.Provider == ProviderS3 && sb.S3 != nil {
		return "s3://" + path.Join(endpointHost(sb.S3.Endpoint), sb.S3.Bucket, cleanPath(sb.S3.Prefix))
	}
	sub := ""
	if sb.Local != nil {
		sub = cleanPath(sb.Local.SubPath)
	}
	return "local://" + path.Join(bs.Namespace, bs.Name, sub)
}

// RepositoryLocation is the location of repository dir of namespace in bs:
// <bs.Location()>/<namespace>/<dir>, as the Jobs and the operator address
// it.
func RepositoryLocation(bs *BackupStorage, namespace, dir string) string {
	return bs.Location() + "/" + path.Join(namespace, cleanPath(dir))
}

// LocationsOverlap reports whether locations a and b are the same place
// (same) or one lies inside the other (nested): in either case deleting
// one deletes data of the other.
func LocationsOverlap(a, b string) (same, nested bool) {
	if a == b {
		return true, false
	}
	return false, strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// endpointHost is the host of an S3 endpoint URL, lowercased and without
// the scheme's default port.
func endpointHost(endpoint string) string {
	if endpoint == "" {
		return "aws"
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return strings.ToLower(strings.TrimRight(endpoint, "/"))
	}
	host := strings.ToLower(u.Host)
	switch {
	case u.Scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	case u.Scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	}
	return host
}

// cleanPath is p without empty, "." or leading and trailing slashes, as
// the storage joins keys; "" for the root.
func cleanPath(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	return p
}

// SameLocation reports whether two Repository specs name the same restic
// repository with the same key: storage, path and encryption Secret, the
// fields that cannot change.
func SameLocation(a, b RepositorySpec) bool {
	return a.StorageRef == b.StorageRef && a.Path == b.Path && a.EncryptionSecret == b.EncryptionSecret
}

// MovedRepositoryName is the name of the Repository that takes over from
// Repository name when a BackupConfiguration moves it to spec's location:
// name, cut to leave room, and a hash of the location, so that each
// location has one name and moving back finds the Repository again.
func MovedRepositoryName(name string, spec RepositorySpec) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{
		spec.StorageRef.Namespace, spec.StorageRef.Name, spec.Path, spec.EncryptionSecret.Namespace, spec.EncryptionSecret.Name,
	}, "\x00")))
	const maxName = 63 - 1 - 8 // a DNS label, a dash, the hash
	if len(name) > maxName {
		name = strings.TrimRight(name[:maxName], "-.")
	}
	return name + "-" + hex.EncodeToString(sum[:4])
}
