package restic

import (
	"errors"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := map[string]struct {
		// exitCode is restic's exit status (-1: killed).
		exitCode int
		// stderr is what restic wrote to standard error.
		stderr string
		// want is the expected kind; nil for none.
		want error
	}{
		"no repository by exit code":  {exitCode: 10, stderr: "Fatal: repository does not exist: ...", want: ErrRepositoryMissing},
		"locked by exit code":         {exitCode: 11, want: ErrLocked},
		"wrong password by exit code": {exitCode: 12, want: ErrWrongPassword},
		"wrong password by message":   {exitCode: 1, stderr: "Fatal: wrong password or no key found", want: ErrWrongPassword},
		"unreachable at open": {exitCode: 1,
			stderr: "Fatal: unable to open config file: Stat: Head \"http://127.0.0.1:1/b/config\": dial tcp 127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?",
			want:   ErrUnreachable},
		"killed while retrying": {exitCode: -1,
			stderr: "Save(<data/1a2b>) returned error, retrying after 1.2s: Put \"http://x/y\": dial tcp: lookup x: no such host",
			want:   ErrUnreachable},
		"unknown CA":         {exitCode: 1, stderr: "tls: failed to verify certificate: x509: certificate signed by unknown authority", want: ErrUnreachable},
		"access denied":      {exitCode: 1, stderr: "Fatal: unable to open config file: Stat: Access Denied.", want: ErrAccessDenied},
		"unknown key id":     {exitCode: 1, stderr: "The Access Key Id you provided does not exist in our records.", want: ErrAccessDenied},
		"check found damage": {exitCode: 1, stderr: "Fatal: repository contains errors", want: ErrIntegrity},
		"lock message":       {exitCode: 1, stderr: "unable to create lock in backend: repository is already locked exclusively by PID 7", want: ErrLocked},
		"other failure":      {exitCode: 1, stderr: "Fatal: invalid argument", want: nil},
		"incomplete backup":  {exitCode: 3, stderr: "Warning: at least one source file could not be read", want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := classify(tc.exitCode, tc.stderr); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
				t.Fatalf("classify(%d, %q) = %v, want %v", tc.exitCode, tc.stderr, got, tc.want)
			}
		})
	}
}

func TestLastMessage(t *testing.T) {
	tests := map[string]struct {
		// stderr is what restic wrote to standard error.
		stderr string
		// want is the message kept for the error.
		want string
	}{
		"json exit error wins": {
			stderr: "retrying...\n{\"message_type\":\"exit_error\",\"code\":12,\"message\":\"Fatal: wrong password or no key found\\n\"}\n",
			want:   "Fatal: wrong password or no key found",
		},
		"last three text lines": {stderr: "a\nb\nc\nd\n", want: "b\nc\nd"},
		"empty":                 {stderr: "", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := lastMessage(tc.stderr); got != tc.want {
				t.Fatalf("lastMessage = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCommandErrorUnwrapsToItsKind(t *testing.T) {
	err := error(&CommandError{Op: "backup", Repository: "s3:x/b", ExitCode: 12, Kind: ErrWrongPassword})
	if !errors.Is(err, ErrWrongPassword) || errors.Is(err, ErrLocked) {
		t.Fatalf("%v: want it to be ErrWrongPassword only", err)
	}
}

func TestChildEnvDropsInheritedSecrets(t *testing.T) {
	parent := []string{"PATH=/bin", "RESTIC_PASSWORD=leak", "AWS_SECRET_ACCESS_KEY=leak", "HOME=/h"}
	got := childEnv(parent, []string{"AWS_ACCESS_KEY_ID=k"})
	want := []string{"PATH=/bin", "HOME=/h", "AWS_ACCESS_KEY_ID=k"}
	if len(got) != len(want) {
		t.Fatalf("childEnv = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("childEnv = %v, want %v", got, want)
		}
	}
}

func TestDamageReport(t *testing.T) {
	checkOutput := "pack 560d907d contains 2 errors: [blob 1e9f: decrypting blob failed]\n\n" +
		"The repository contains damaged pack files. These damaged files must be removed to repair the repository.\n\n" +
		"restic repair packs 560d907d\nrestic repair snapshots --forget\n\nFatal: repository contains errors\n"
	tests := map[string]struct {
		// stderr is what restic check wrote to standard error.
		stderr string
		// want is the account of the damage kept for the error.
		want string
	}{
		"damaged pack, advice left out": {stderr: checkOutput, want: "pack 560d907d contains 2 errors: [blob 1e9f: decrypting blob failed]"},
		"tree errors":                   {stderr: "error for tree 4bba: id 4bba not found in repository\nFatal: repository contains errors\n", want: "error for tree 4bba: id 4bba not found in repository"},
		"at most three":                 {stderr: "error: a\nerror: b\nerror: c\nerror: d\n", want: "error: a; error: b; error: c"},
		"long lines are cut":            {stderr: "pack " + strings.Repeat("x", 400), want: "pack " + strings.Repeat("x", 295) + "..."},
		"no damage named":               {stderr: "Fatal: unable to open repository\n", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := damageReport(tc.stderr); got != tc.want {
				t.Fatalf("damageReport = %q, want %q", got, tc.want)
			}
		})
	}
}
