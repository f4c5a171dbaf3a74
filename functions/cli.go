package functions

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// RunUsage is the help of `keepsake run`.
const RunUsage = `usage: keepsake run backup|restore [flags]

Runs inside a Job: starts the driver and streams between it and restic.
Every flag can also come from the environment variable KEEPSAKE_<FLAG>
(upper case, - as _); a repeated flag takes one value per line there.`

// memoryLimit is the runtime's soft heap limit unless GOMEMLIMIT is set:
// its live data is a few stream chunks, and the limit keeps the garbage
// collector from letting the heap double between collections.
const memoryLimit = 40 << 20

// Main runs `keepsake run <args>`; args start with "backup" or "restore".
// Results are reported to stdout as JSON lines; logs go to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "backup" && args[0] != "restore") {
		fmt.Fprintln(stderr, RunUsage)
		return errors.New("run: want backup or restore")
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	f, err := parseFlags(args[0], args[1:], os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	common, err := f.common(stdout, stderr)
	if err != nil {
		return err
	}
	if args[0] == "backup" {
		return RunBackup(ctx, BackupConfig{Common: common, Repositories: f.repositories, Session: f.session})
	}
	if len(f.repositories) != 1 {
		return fmt.Errorf("restore needs exactly one --repository, got %d", len(f.repositories))
	}
	return RunRestore(ctx, RestoreConfig{Common: common, Repository: f.repositories[0], Snapshot: f.snapshot})
}

// runFlags are the parsed flags of `keepsake run`.
type runFlags struct {
	driver, component, paramsFile, restic, cacheDir, reportTo string
	session, snapshot                                         string
	target                                                    sdk.Target
	params, secrets                                           keyValues
	repositories                                              repositoryList
}

func parseFlags(op string, args []string, env func(string) (string, bool), stderr io.Writer) (*runFlags, error) {
	f := &runFlags{params: keyValues{}, secrets: keyValues{}}
	fs := flag.NewFlagSet("keepsake run "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.driver, "driver", "", "path of the driver binary (required)")
	fs.StringVar(&f.component, "component", "", "component name: the file name inside the snapshot (required)")
	fs.StringVar(&f.target.APIGroup, "target-group", "", "API group of the target's kind")
	fs.StringVar(&f.target.Kind, "target-kind", "", "kind of the target, e.g. HyperbytedbCluster")
	fs.StringVar(&f.target.Name, "target-name", "", "name of the target")
	fs.StringVar(&f.target.Namespace, "target-namespace", "", "namespace of the target")
	fs.Var(f.params, "param", "driver parameter name=value (repeatable; wins over --params-file)")
	fs.StringVar(&f.paramsFile, "params-file", "", "JSON object of driver parameters")
	fs.Var(f.secrets, "secret", "credential name=path of a mounted Secret, passed to the driver (repeatable)")
	fs.Var(&f.repositories, "repository", "repository spec name=...,password-file=...,restic=... | storage=...,credentials=...,namespace=...,directory=... (repeatable)")
	fs.StringVar(&f.restic, "restic", "", "restic binary; default: restic beside keepsake, else from PATH")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "restic cache directory")
	fs.StringVar(&f.reportTo, "report-to", "stdout", "where results go: stdout (JSON lines)")
	fs.StringVar(&f.session, "session", "", "backup: session name, added as a snapshot tag")
	fs.StringVar(&f.snapshot, "snapshot", "latest", "restore: restic snapshot ID, or latest")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := fromEnv(fs, env); err != nil {
		return nil, err
	}
	return f, f.validate()
}

// fromEnv sets every flag not given on the command line from its
// environment variable.
func fromEnv(fs *flag.FlagSet, env func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var err error
	fs.VisitAll(func(fl *flag.Flag) {
		name := "KEEPSAKE_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		v, ok := env(name)
		if given[fl.Name] || !ok || err != nil {
			return
		}
		if _, repeated := fl.Value.(interface{ repeated() }); !repeated {
			err = fl.Value.Set(v)
			return
		}
		for _, line := range strings.Split(strings.TrimSpace(v), "\n") {
			if err == nil && strings.TrimSpace(line) != "" {
				err = fl.Value.Set(strings.TrimSpace(line))
			}
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		}
	})
	return err
}

func (f *runFlags) validate() error {
	var missing []string
	if f.driver == "" {
		missing = append(missing, "--driver")
	}
	if f.component == "" {
		missing = append(missing, "--component")
	}
	if len(f.repositories) == 0 {
		missing = append(missing, "--repository")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if f.reportTo != "stdout" {
		return fmt.Errorf("--report-to %q: only stdout is supported so far", f.reportTo)
	}
	return nil
}

// common resolves the flags both operations share.
func (f *runFlags) common(stdout, stderr io.Writer) (Common, error) {
	params, err := f.mergedParams()
	if err != nil {
		return Common{}, err
	}
	return Common{
		Driver: f.driver,
		Request: sdk.Request{
			Target: f.target, Params: params, Credentials: f.secrets, Component: f.component,
		},
		Restic:   resticBinary(f.restic),
		CacheDir: f.cacheDir,
		Reporter: NewStdoutReporter(stdout),
		Log:      stderr,
	}, nil
}

// mergedParams reads --params-file and lays the --param flags over it.
func (f *runFlags) mergedParams() (map[string]string, error) {
	params := map[string]string{}
	if f.paramsFile != "" {
		data, err := os.ReadFile(f.paramsFile)
		if err != nil {
			return nil, fmt.Errorf("params file: %w", err)
		}
		if err := json.Unmarshal(data, &params); err != nil {
			return nil, fmt.Errorf("params file %s: want a JSON object of strings: %w", f.paramsFile, err)
		}
	}
	for k, v := range f.params {
		params[k] = v
	}
	return params, nil
}

// resticBinary returns the explicit path, else restic beside this
// executable (the Job's init container copies both), else restic on PATH.
func resticBinary(explicit string) string {
	if explicit != "" {
		return explicit
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "restic")
		if _, err := os.Stat(beside); err == nil {
			return beside
		}
	}
	if p, err := exec.LookPath("restic"); err == nil {
		return p
	}
	return "restic"
}

// keyValues is a repeatable name=value flag.
type keyValues map[string]string

func (kv keyValues) String() string { return fmt.Sprint(map[string]string(kv)) }
func (kv keyValues) repeated()      {}

// Set implements flag.Value.
func (kv keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not name=value", s)
	}
	kv[k] = v
	return nil
}

// repositoryList is the repeatable --repository flag.
type repositoryList []RepositorySpec

func (r *repositoryList) String() string { return fmt.Sprint(len(*r), " repositories") }
func (r *repositoryList) repeated()      {}

// Set implements flag.Value.
func (r *repositoryList) Set(s string) error {
	spec, err := ParseRepositorySpec(s)
	if err != nil {
		return err
	}
	for _, other := range *r {
		if other.Name == spec.Name {
			return fmt.Errorf("repository %s given twice", spec.Name)
		}
	}
	*r = append(*r, spec)
	return nil
}
