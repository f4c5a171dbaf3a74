package v1alpha1

import "testing"

func s3BS(endpoint, bucket, prefix string) *BackupStorage {
	bs := &BackupStorage{}
	bs.Spec.Storage = StorageBackend{Provider: ProviderS3, S3: &S3Storage{Endpoint: endpoint, Bucket: bucket, Prefix: prefix}}
	return bs
}

// TestRepositoryLocationOverlap checks that two spellings of one place are
// one location, and that nesting is seen across storages and namespaces.
func TestRepositoryLocationOverlap(t *testing.T) {
	tests := map[string]struct {
		// a and b are two repositories: storage, namespace, directory.
		a, b repoAt
		// wantSame and wantNested are what LocationsOverlap says.
		wantSame, wantNested bool
	}{
		"same storage, same path": {
			a: loc(s3BS("http://minio:9000", "b", "p"), "ns", "db"), b: loc(s3BS("http://minio:9000", "b", "p"), "ns", "db"),
			wantSame: true,
		},
		"another spelling of the endpoint and prefix": {
			a: loc(s3BS("http://MinIO:9000/", "b", "p/"), "ns", "db"), b: loc(s3BS("http://minio:9000", "b", "p"), "ns", "db"),
			wantSame: true,
		},
		"default port": {
			a: loc(s3BS("https://s3.example.com:443", "b", ""), "ns", "db"), b: loc(s3BS("https://s3.example.com", "b", ""), "ns", "db"),
			wantSame: true,
		},
		"nested path": {
			a: loc(s3BS("", "b", "p"), "ns", "db"), b: loc(s3BS("", "b", "p"), "ns", "db/logical/x/y/z"),
			wantNested: true,
		},
		"sibling with a common name prefix": {
			a: loc(s3BS("", "b", "p"), "ns", "db"), b: loc(s3BS("", "b", "p"), "ns", "db2"),
		},
		"another namespace": {
			a: loc(s3BS("", "b", "p"), "ns", "db"), b: loc(s3BS("", "b", "p"), "other", "db"),
		},
		"a prefix inside another storage's prefix": {
			a: loc(s3BS("", "b", "p"), "team-a", "team-b/db"), b: loc(s3BS("", "b", "p/team-a"), "team-b", "db"),
			wantSame: true,
		},
		"another bucket": {
			a: loc(s3BS("", "b", "p"), "ns", "db"), b: loc(s3BS("", "c", "p"), "ns", "db"),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := RepositoryLocation(tc.a.bs, tc.a.ns, tc.a.at)
			b := RepositoryLocation(tc.b.bs, tc.b.ns, tc.b.at)
			same, nested := LocationsOverlap(a, b)
			if same != tc.wantSame || nested != tc.wantNested {
				t.Errorf("LocationsOverlap(%s, %s) = %v, %v; want %v, %v", a, b, same, nested, tc.wantSame, tc.wantNested)
			}
		})
	}
}

// repoAt is a repository: its storage, namespace and directory.
type repoAt struct {
	bs     *BackupStorage
	ns, at string
}

func loc(bs *BackupStorage, ns, at string) repoAt { return repoAt{bs, ns, at} }
