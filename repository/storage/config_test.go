package storage

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestCredentialsFromSecretData(t *testing.T) {
	tests := map[string]struct {
		// data is the Secret's data.
		data map[string][]byte
		// want are the credentials read.
		want Credentials
		// wantErr is the expected error, nil for none.
		wantErr error
	}{
		"aws keys with region and endpoint": {
			data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("ak"), "AWS_SECRET_ACCESS_KEY": []byte("sk\n"),
				"AWS_REGION": []byte("eu-west-1"), "AWS_ENDPOINT_URL": []byte("https://s3.example")},
			want: Credentials{AccessKeyID: "ak", SecretAccessKey: "sk", Region: "eu-west-1", Endpoint: "https://s3.example"},
		},
		"operator style keys": {
			data: map[string][]byte{"access_key_id": []byte("ak"), "secret_access_key": []byte("sk")},
			want: Credentials{AccessKeyID: "ak", SecretAccessKey: "sk"},
		},
		"aws keys win over operator style": {
			data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("aws"), "access_key_id": []byte("op"),
				"AWS_SECRET_ACCESS_KEY": []byte("sk")},
			want: Credentials{AccessKeyID: "aws", SecretAccessKey: "sk"},
		},
		"session token": {
			data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("ak"), "AWS_SECRET_ACCESS_KEY": []byte("sk"),
				"AWS_SESSION_TOKEN": []byte("tok")},
			want: Credentials{AccessKeyID: "ak", SecretAccessKey: "sk", SessionToken: "tok"},
		},
		"secret key missing": {data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("ak")}, wantErr: ErrMissingCredentials},
		"blank values":       {data: map[string][]byte{"access_key_id": []byte(" "), "secret_access_key": []byte("\n")}, wantErr: ErrMissingCredentials},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := CredentialsFromSecretData(tc.data)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("credentials %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestResticRepository(t *testing.T) {
	creds := Credentials{AccessKeyID: "ak", SecretAccessKey: "sk"}
	tests := map[string]struct {
		// cfg is the storage.
		cfg Config
		// wantRepo is restic's repository string for namespace "ns", dir "db".
		wantRepo string
		// wantArgs are the extra restic options.
		wantArgs []string
	}{
		"minio path style": {
			cfg: Config{Provider: ProviderS3, Credentials: creds,
				S3: S3Config{Endpoint: "http://minio:9000/", Bucket: "b", Prefix: "/keep/", ForcePathStyle: true, MaxConnections: 8}},
			wantRepo: "s3:http://minio:9000/b/keep/ns/db",
			wantArgs: []string{"-o", "s3.bucket-lookup=path", "-o", "s3.connections=8"},
		},
		"bare host gets https, insecure": {
			cfg:      Config{Provider: ProviderS3, Credentials: creds, S3: S3Config{Endpoint: "minio:9000", Bucket: "b", InsecureTLS: true}},
			wantRepo: "s3:https://minio:9000/b/ns/db",
			wantArgs: []string{"--insecure-tls"},
		},
		"aws with region from the secret": {
			cfg: Config{Provider: ProviderS3, S3: S3Config{Bucket: "b", Prefix: "p"},
				Credentials: Credentials{AccessKeyID: "ak", SecretAccessKey: "sk", Region: "eu-west-1"}},
			wantRepo: "s3:s3.eu-west-1.amazonaws.com/b/p/ns/db",
			wantArgs: []string{"-o", "s3.region=eu-west-1"},
		},
		"endpoint from the secret, mounted CA file": {
			cfg: Config{Provider: ProviderS3, S3: S3Config{Bucket: "b", CABundleFile: "/etc/ca/ca.crt"},
				Credentials: Credentials{AccessKeyID: "ak", SecretAccessKey: "sk", Endpoint: "https://ceph.local"}},
			wantRepo: "s3:https://ceph.local/b/ns/db",
			wantArgs: []string{"--cacert", "/etc/ca/ca.crt"},
		},
		"local": {
			cfg:      Config{Provider: ProviderLocal, Local: LocalConfig{Path: "/backups"}},
			wantRepo: "/backups/ns/db",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ResticRepository(tc.cfg, "ns", "db")
			if err != nil {
				t.Fatalf("ResticRepository: %v", err)
			}
			if got.Repository != tc.wantRepo || !slices.Equal(got.ExtraArgs, tc.wantArgs) {
				t.Fatalf("got %q %q, want %q %q", got.Repository, got.ExtraArgs, tc.wantRepo, tc.wantArgs)
			}
			if tc.cfg.Provider == ProviderS3 && !slices.Equal(got.Env, []string{"AWS_ACCESS_KEY_ID=ak", "AWS_SECRET_ACCESS_KEY=sk"}) {
				t.Fatalf("env %v: want exactly the access key pair", got.Env)
			}
			if strings.Contains(got.Repository+strings.Join(got.ExtraArgs, " "), "sk") {
				t.Fatalf("secret key in the command line: %q %q", got.Repository, got.ExtraArgs)
			}
		})
	}
}

func TestResticRepositoryWritesCABundleBytesToAFile(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	cfg := Config{Provider: ProviderS3, S3: S3Config{Bucket: "b", CABundle: pem}}
	got, err := ResticRepository(cfg, "ns", "db")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ExtraArgs) != 2 || got.ExtraArgs[0] != "--cacert" {
		t.Fatalf("args %q: want --cacert <file>", got.ExtraArgs)
	}
	if data, err := os.ReadFile(got.ExtraArgs[1]); err != nil || string(data) != string(pem) {
		t.Fatalf("CA file holds %q, %v; want the bundle", data, err)
	}
}

func TestResticRepositoryRefusesEscapes(t *testing.T) {
	cfg := Config{Provider: ProviderLocal, Local: LocalConfig{Path: "/backups"}}
	for _, dir := range []string{"", "/", "../other-ns/db", "a/../../x"} {
		if got, err := ResticRepository(cfg, "ns", dir); err == nil {
			t.Errorf("dir %q: got %q, want an error", dir, got.Repository)
		}
	}
}

func TestClassifyStatus(t *testing.T) {
	tests := map[string]struct {
		// status is the HTTP status of a response without an error code.
		status int
		// notFound is what a 404 means for the call.
		notFound error
		// want is the error kind, nil for none.
		want error
	}{
		"head bucket 404":  {status: 404, notFound: ErrBucketNotFound, want: ErrBucketNotFound},
		"get object 404":   {status: 404, notFound: ErrNotFound, want: ErrNotFound},
		"bare 403":         {status: 403, want: ErrAccessDenied},
		"401":              {status: 401, want: ErrInvalidCredentials},
		"bad gateway":      {status: 502, want: ErrUnreachable},
		"internal failure": {status: 500, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := classifyStatus(tc.status, tc.notFound); got != tc.want {
				t.Fatalf("classifyStatus(%d) = %v, want %v", tc.status, got, tc.want)
			}
		})
	}
}
