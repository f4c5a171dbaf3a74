package functions

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepsake-dev/keepsake/repository/restic"
)

func TestParseRepositorySpec(t *testing.T) {
	tests := map[string]struct {
		value string         // the --repository value
		want  RepositorySpec // expected spec
		err   string         // expected error substring
	}{
		"storage form": {
			value: "name=primary, storage=/s.json,credentials=/c,namespace=prod,directory=db/p,password-file=/pw",
			want: RepositorySpec{Name: "primary", StorageFile: "/s.json", CredentialsDir: "/c", Namespace: "prod",
				Directory: "db/p", PasswordFile: "/pw"},
		},
		"restic form": {
			value: "name=local,restic=/backups/db,password-file=/pw",
			want:  RepositorySpec{Name: "local", Restic: "/backups/db", PasswordFile: "/pw"},
		},
		"unknown key":         {value: "name=a,repo=/x,password-file=/p", err: `"repo=/x" is not one of`},
		"both locations":      {value: "name=a,restic=/x,storage=/s,namespace=n,directory=d,password-file=/p", err: "exactly one of restic and storage"},
		"storage without dir": {value: "name=a,storage=/s,password-file=/p", err: "storage needs namespace and directory"},
		"nothing":             {value: "name=", err: "no name; no password-file; exactly one of"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseRepositorySpec(tc.value)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v (%v), want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	const repo = "name=r,restic=/r,password-file=/p"
	tests := map[string]struct {
		args  []string          // command line after the operation
		env   map[string]string // environment
		check func(*runFlags) bool
		err   string // expected error substring
	}{
		"flags only": {
			args: []string{"--driver=/d", "--component=dump", "--repository", repo, "--param", "a=1", "--param", "b=x=y",
				"--secret", "auth=/s", "--target-name", "db"},
			check: func(f *runFlags) bool {
				return f.driver == "/d" && maps.Equal(f.params, keyValues{"a": "1", "b": "x=y"}) &&
					f.secrets["auth"] == "/s" && f.target.Name == "db" && len(f.repositories) == 1
			},
		},
		"environment fills what flags leave out, one value per line for repeated flags": {
			args: []string{"--driver=/flag"},
			env: map[string]string{"KEEPSAKE_DRIVER": "/env", "KEEPSAKE_COMPONENT": "dump",
				"KEEPSAKE_REPOSITORY": repo + "\nname=s,restic=/s,password-file=/p\n", "KEEPSAKE_PARAM": "a=1\nb=2"},
			check: func(f *runFlags) bool {
				return f.driver == "/flag" && f.component == "dump" && len(f.repositories) == 2 && len(f.params) == 2
			},
		},
		"missing required": {args: []string{"--component=x"}, err: "missing --driver, --repository"},
		"bad param":        {args: []string{"--param", "novalue"}, err: `"novalue" is not name=value`},
		"repository twice": {args: []string{"--repository", repo, "--repository", repo}, err: "repository r given twice"},
		"kubernetes without namespace or session": {
			args: []string{"--driver=/d", "--component=c", "--repository", repo, "--report-to=kubernetes"},
			err:  "--report-to kubernetes needs --namespace, --backup-session",
		},
		"kubernetes from the environment": {
			args: []string{"--driver=/d", "--component=c", "--repository", repo},
			env:  map[string]string{"KEEPSAKE_REPORT_TO": "kubernetes", "KEEPSAKE_NAMESPACE": "prod", "KEEPSAKE_BACKUP_SESSION": "bks-1"},
			check: func(f *runFlags) bool {
				return f.reportTo == "kubernetes" && f.namespace == "prod" && f.backupSession == "bks-1"
			},
		},
		"unknown report target":   {args: []string{"--driver=/d", "--component=c", "--repository", repo, "--report-to=slack"}, err: "want stdout or kubernetes"},
		"stray argument":          {args: []string{"--driver=/d", "extra"}, err: `unexpected arguments ["extra"]`},
		"bad repository from env": {env: map[string]string{"KEEPSAKE_REPOSITORY": "name=x"}, err: "KEEPSAKE_REPOSITORY: repository x"},
		"progress every 5s unless told": {
			args:  []string{"--driver=/d", "--component=c", "--repository", repo},
			check: func(f *runFlags) bool { return f.progressInterval == DefaultProgressInterval },
		},
		"progress interval from the environment": {
			args:  []string{"--driver=/d", "--component=c", "--repository", repo},
			env:   map[string]string{"KEEPSAKE_PROGRESS_INTERVAL": "250ms"},
			check: func(f *runFlags) bool { return f.progressInterval == 250*time.Millisecond },
		},
		"progress interval not positive": {
			args: []string{"--driver=/d", "--component=c", "--repository", repo, "--progress-interval=0s"},
			err:  "--progress-interval 0s: want a positive duration",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			f, err := parseFlags("backup", tc.args, env, io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(f) {
				t.Fatalf("flags %+v (%v)", f, err)
			}
		})
	}
}

func TestParseMaintenanceFlags(t *testing.T) {
	const repo = "name=r,restic=/r,password-file=/p"
	tests := map[string]struct {
		op    string            // retention, forget or restore
		args  []string          // command line after the operation
		env   map[string]string // environment
		check func(*runFlags) bool
		err   string // expected error substring
	}{
		"retention policy from flags and environment": {
			op: "retention", args: []string{"--session", "hourly", "--repository", repo, "--keep-last=2", "--keep-within", "30d"},
			env: map[string]string{"KEEPSAKE_KEEP_DAILY": "7"},
			check: func(f *runFlags) bool {
				return f.policy == restic.RetentionPolicy{Last: 2, Daily: 7, Within: "30d"} && f.session == "hourly"
			},
		},
		"retention without a keep flag": {op: "retention", args: []string{"--session", "hourly", "--repository", repo}, err: "keeps nothing: give at least one --keep-* flag"},
		"retention negative":            {op: "retention", args: []string{"--session", "hourly", "--repository", repo, "--keep-last=-1"}, err: "negative"},
		"retention two repositories": {
			op: "retention", args: []string{"--session", "hourly", "--repository", repo, "--repository", "name=s,restic=/s,password-file=/p", "--keep-last=1"},
			err: "retention needs exactly one --repository, got 2",
		},
		"retention takes no driver": {op: "retention", args: []string{"--session", "hourly", "--repository", repo, "--keep-last=1", "--driver=/d"}, err: "flag provided but not defined: -driver"},
		"retention kubernetes without namespace": {
			op: "retention", args: []string{"--session", "hourly", "--repository", repo, "--keep-last=1", "--report-to=kubernetes"},
			err: "--report-to kubernetes needs --namespace",
		},
		"retention without a session": {
			op: "retention", args: []string{"--repository", repo, "--keep-last=1"}, err: "missing --session",
		},
		"forget IDs one per line in the environment": {
			op: "forget", args: []string{"--repository", repo}, env: map[string]string{"KEEPSAKE_SNAPSHOT_ID": "abc\ndef\n"},
			check: func(f *runFlags) bool { return slices.Equal(f.snapshotIDs, []string{"abc", "def"}) },
		},
		"forget without an ID":     {op: "forget", args: []string{"--repository", repo}, err: "missing --snapshot-id"},
		"forget without anything":  {op: "forget", err: "missing --repository, --snapshot-id"},
		"restore two repositories": {op: "restore", args: []string{"--driver=/d", "--component=c", "--repository", repo, "--repository", "name=s,restic=/s,password-file=/p"}, err: "restore needs exactly one --repository, got 2"},
		"restore kubernetes without session": {
			op: "restore", args: []string{"--driver=/d", "--component=c", "--repository", repo, "--report-to=kubernetes", "--namespace=prod"},
			err: "--report-to kubernetes needs --restore-session",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			f, err := parseFlags(tc.op, tc.args, env, io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(f) {
				t.Fatalf("flags %+v (%v)", f, err)
			}
		})
	}
}

// drain reads r to the end into got, sleeping delay before each read of
// at most 1000 bytes.
func drain(t *testing.T, r io.Reader, delay time.Duration, got *bytes.Buffer, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 1000)
	for {
		time.Sleep(delay)
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			return
		}
	}
}

func TestFanout(t *testing.T) {
	f := newFanout(2)
	var wg sync.WaitGroup
	var fast, slow bytes.Buffer
	wg.Add(2)
	go drain(t, f.reader(0), 0, &fast, &wg)
	go drain(t, f.reader(1), 10*time.Millisecond, &slow, &wg)
	data := bytes.Repeat([]byte("0123456789"), 500)
	start := time.Now()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 40*time.Millisecond {
		t.Fatalf("Write returned after %s, before the slow reader could take 5000 bytes", took)
	}
	f.finish(nil)
	wg.Wait()
	if !bytes.Equal(fast.Bytes(), data) || !bytes.Equal(slow.Bytes(), data) {
		t.Fatal("a reader got different bytes")
	}
}

func TestFanoutDropsFailedReaders(t *testing.T) {
	f := newFanout(2)
	failed := errors.New("restic died")
	_ = f.reader(0).CloseWithError(failed)
	var wg sync.WaitGroup
	var got bytes.Buffer
	wg.Add(1)
	go drain(t, f.reader(1), 0, &got, &wg)
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatalf("one live reader left, yet Write failed: %v", err)
	}
	_ = f.reader(1).CloseWithError(failed)
	wg.Wait()
	if _, err := f.Write([]byte("def")); !errors.Is(err, errNoSinks) || !errors.Is(err, failed) {
		t.Fatalf("Write with no readers left: %v", err)
	}
}

func TestMatchSnapshots(t *testing.T) {
	snaps := []restic.Snapshot{{ID: "aa11"}, {ID: "aa22"}, {ID: "bb33"}}
	tests := map[string]struct {
		ids            []string // requested IDs
		found, missing []string // expected split
		err            string   // expected error substring
	}{
		"full and short IDs":     {ids: []string{"aa11", "bb"}, found: []string{"aa11", "bb33"}},
		"the same one twice":     {ids: []string{"aa11", "aa1"}, found: []string{"aa11"}},
		"gone already":           {ids: []string{"cc", "aa22"}, found: []string{"aa22"}, missing: []string{"cc"}},
		"ambiguous prefix fails": {ids: []string{"aa"}, err: "snapshot ID aa is ambiguous: 2 snapshots"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			found, missing, err := matchSnapshots(snaps, tc.ids)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(found, tc.found) || !slices.Equal(missing, tc.missing) {
				t.Fatalf("found %v, missing %v (%v); want %v, %v", found, missing, err, tc.found, tc.missing)
			}
		})
	}
}
