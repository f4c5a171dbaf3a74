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
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keepsake-dev/keepsake/addons/sdk"
	"github.com/keepsake-dev/keepsake/repository/restic"
)

// RunUsage is the help of `keepsake run`.
const RunUsage = `usage: keepsake run backup|restore|retention|forget|sync|check|verify [flags]

Runs inside a Job. backup and restore start the driver and stream between
it and restic; retention applies a retention policy to one repository and
forget removes given snapshots from one (both then prune); sync creates,
with --report-to kubernetes, a Snapshot object for each backup of one
repository that has none; check runs restic check on one repository and,
with --report-to kubernetes, records the verdict in its Repository;
verify reads a Snapshot object's data back and records whether it matches.
Every flag can also come from the environment variable KEEPSAKE_<FLAG>
(upper case, - as _); a repeated flag takes one value per line there.
Run keepsake run <operation> -h for an operation's flags.`

// memoryLimit is the runtime's soft heap limit unless GOMEMLIMIT is set:
// its live data is a few stream chunks, and the limit keeps the garbage
// collector from letting the heap double between collections.
const memoryLimit = 40 << 20

// Operations of `keepsake run`.
const (
	opBackup    = "backup"
	opRestore   = "restore"
	opRetention = "retention"
	opForget    = "forget"
	opSync      = "sync"
	opCheck     = "check"
	opVerify    = "verify"
)

// Where results are reported (--report-to).
const (
	reportStdout     = "stdout"
	reportKubernetes = "kubernetes"
)

// Main runs `keepsake run <args>`; args start with the operation. Results
// are reported as JSON lines to stdout and, with --report-to kubernetes,
// into the session's objects; logs go to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || !slices.Contains([]string{opBackup, opRestore, opRetention, opForget, opSync, opCheck, opVerify}, args[0]) {
		fmt.Fprintln(stderr, RunUsage)
		return errors.New("run: want backup, restore, retention, forget, sync, check or verify")
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	op := args[0]
	f, err := parseFlags(op, args[1:], os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	switch op {
	case opRetention, opForget:
		return runMaintenance(ctx, op, f, stdout, stderr)
	case opSync:
		return runSync(ctx, f, stdout, stderr)
	case opCheck:
		return runCheck(ctx, f, stdout, stderr)
	case opVerify:
		return runVerify(ctx, f, stdout, stderr)
	}
	common, err := f.common(op, stdout, stderr)
	if err != nil {
		return err
	}
	if op == opBackup {
		return RunBackup(ctx, BackupConfig{Common: common, Repositories: f.repositories, Configuration: f.configuration, Session: f.session, Run: f.backupSession})
	}
	return RunRestore(ctx, RestoreConfig{Common: common, Repository: f.repositories[0], Snapshot: f.snapshot})
}

// runMaintenance runs retention or forget.
func runMaintenance(ctx context.Context, op string, f *runFlags, stdout, stderr io.Writer) error {
	rep, err := f.maintenanceReporter(stdout, stderr)
	if err != nil {
		return err
	}
	binary := resticBinary(f.restic)
	locks := f.lockKeeper(rep, stderr)
	if op == opRetention {
		return RunRetention(ctx, RetentionConfig{
			Repository: f.repositories[0], Policy: f.policy, Restic: binary, CacheDir: f.cacheDir, Reporter: rep,
			Configuration: f.configuration, Session: f.session, Locks: locks,
		})
	}
	return RunForget(ctx, ForgetConfig{
		Repository: f.repositories[0], SnapshotIDs: f.snapshotIDs, Restic: binary, CacheDir: f.cacheDir, Reporter: rep,
		Locks: locks,
	})
}

// runFlags are the parsed flags of `keepsake run`.
type runFlags struct {
	driver, component, paramsFile, restic, cacheDir, reportTo string
	configuration, session, snapshot                          string
	namespace, backupSession, restoreSession                  string
	target                                                    sdk.Target
	params, secrets                                           keyValues
	repositories                                              repositoryList
	policy                                                    restic.RetentionPolicy
	snapshotIDs                                               stringList
	readDataSubset, job, request, snapshotObject, noDriver    string
	progressInterval                                          time.Duration
	// kube is the API client of --report-to kubernetes, made once.
	kube client.Client
}

// client returns the API client, made on first use.
func (f *runFlags) client(stderr io.Writer) (client.Client, error) {
	if f.kube != nil {
		return f.kube, nil
	}
	c, err := newClient(stderr)
	f.kube = c
	return c, err
}

// lockKeeper clears the locks of ended Jobs before a run: with --report-to
// kubernetes it asks the API about the pods named in the locks and tells
// rep about a wait; else it only logs.
func (f *runFlags) lockKeeper(rep any, stderr io.Writer) *LockKeeper {
	k := &LockKeeper{Namespace: f.namespace, Reporter: rep, Log: stderr}
	if f.reportTo == reportKubernetes && f.kube != nil {
		k.Pods = f.kube
	}
	return k
}

func parseFlags(op string, args []string, env func(string) (string, bool), stderr io.Writer) (*runFlags, error) {
	f := &runFlags{params: keyValues{}, secrets: keyValues{}}
	fs := flag.NewFlagSet("keepsake run "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.repositoryFlags(fs)
	switch op {
	case opBackup, opRestore:
		f.taskFlags(fs, op)
	case opRetention:
		f.retentionFlags(fs)
	case opForget:
		fs.Var(&f.snapshotIDs, "snapshot-id", "restic snapshot ID to forget (repeatable; required)")
	case opCheck:
		fs.StringVar(&f.readDataSubset, "read-data-subset", "", "also read and verify this part of the data, e.g. 5%, 1/10 or 500M")
		fs.StringVar(&f.job, "job", "", "name of the check Job, recorded with the verdict")
		fs.StringVar(&f.request, "request", "", "the check-requested annotation this check answers, recorded with the verdict")
	case opVerify:
		fs.StringVar(&f.snapshotObject, "snapshot-object", "", "the Snapshot object to verify (required)")
		fs.StringVar(&f.driver, "driver", "", "path of the backup's driver binary, which counts the dump again; without it only bytes are verified")
		fs.StringVar(&f.noDriver, "no-driver", "", "why there is no --driver, for the verdict")
		fs.StringVar(&f.job, "job", "", "name of the verify Job's run, recorded with the verdict")
		fs.StringVar(&f.request, "request", "", "the request this verification answers, recorded with the verdict")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := fromEnv(fs, env); err != nil {
		return nil, err
	}
	return f, f.validate(op)
}

// repositoryFlags are the flags of every operation: where the data is and
// where results go.
func (f *runFlags) repositoryFlags(fs *flag.FlagSet) {
	fs.Var(&f.repositories, "repository", "repository spec name=...,password-file=...,restic=... | storage=...,credentials=...,namespace=...,directory=... (repeatable for backup; one for the others)")
	fs.StringVar(&f.restic, "restic", "", "restic binary; default: restic beside keepsake, else from PATH")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "restic cache directory")
	fs.StringVar(&f.reportTo, "report-to", reportStdout, "where results go: stdout (JSON lines), or kubernetes (the session's objects too)")
	fs.StringVar(&f.namespace, "namespace", "", "namespace of the session's objects (required with --report-to kubernetes)")
}

// taskFlags are the flags of backup and restore: the driver and its task.
func (f *runFlags) taskFlags(fs *flag.FlagSet, op string) {
	fs.StringVar(&f.driver, "driver", "", "path of the driver binary (required)")
	fs.StringVar(&f.component, "component", "", "component name: the file name inside the snapshot (required)")
	fs.StringVar(&f.target.APIGroup, "target-group", "", "API group of the target's kind")
	fs.StringVar(&f.target.Kind, "target-kind", "", "kind of the target, e.g. HyperbytedbCluster")
	fs.StringVar(&f.target.Name, "target-name", "", "name of the target")
	fs.StringVar(&f.target.Namespace, "target-namespace", "", "namespace of the target")
	fs.Var(f.params, "param", "driver parameter name=value (repeatable; wins over --params-file)")
	fs.StringVar(&f.paramsFile, "params-file", "", "JSON object of driver parameters")
	fs.Var(f.secrets, "secret", "credential name=path of a mounted Secret, passed to the driver (repeatable)")
	fs.DurationVar(&f.progressInterval, "progress-interval", DefaultProgressInterval, "least time between two progress reports of the component")
	if op == opBackup {
		f.sessionFlags(fs, "added as snapshot tags")
		fs.StringVar(&f.backupSession, "backup-session", "", "BackupSession whose Snapshots get the results (required with --report-to kubernetes)")
		return
	}
	fs.StringVar(&f.snapshot, "snapshot", "latest", "restic snapshot ID, or latest")
	fs.StringVar(&f.restoreSession, "restore-session", "", "RestoreSession that gets the results (required with --report-to kubernetes)")
}

// sessionFlags name the BackupConfiguration and session whose snapshots a
// backup tags or a retention applies to.
func (f *runFlags) sessionFlags(fs *flag.FlagSet, use string) {
	fs.StringVar(&f.configuration, "configuration", "", "BackupConfiguration name, "+use)
	fs.StringVar(&f.session, "session", "", "session name, "+use)
}

// retentionFlags are the session retention applies to and restic forget's
// --keep-* options.
func (f *runFlags) retentionFlags(fs *flag.FlagSet) {
	f.sessionFlags(fs, "whose snapshots alone the policy applies to (session required)")
	p := &f.policy
	fs.IntVar(&p.Last, "keep-last", 0, "keep the newest n snapshots")
	fs.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last n hours")
	fs.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last n days")
	fs.IntVar(&p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last n weeks")
	fs.IntVar(&p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last n months")
	fs.IntVar(&p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last n years")
	fs.StringVar(&p.Within, "keep-within", "", "keep every snapshot younger than this, e.g. 30d or 1y6m")
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

func (f *runFlags) validate(op string) error {
	var missing []string
	if op == opBackup || op == opRestore {
		missing = appendIf(missing, f.driver == "", "--driver")
		missing = appendIf(missing, f.component == "", "--component")
	}
	missing = appendIf(missing, len(f.repositories) == 0, "--repository")
	missing = appendIf(missing, op == opForget && len(f.snapshotIDs) == 0, "--snapshot-id")
	missing = appendIf(missing, op == opRetention && f.session == "", "--session")
	missing = appendIf(missing, op == opVerify && f.snapshotObject == "", "--snapshot-object")
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if (op == opBackup || op == opRestore) && f.progressInterval <= 0 {
		return fmt.Errorf("--progress-interval %s: want a positive duration, e.g. 5s", f.progressInterval)
	}
	if op != opBackup && len(f.repositories) != 1 {
		return fmt.Errorf("%s needs exactly one --repository, got %d", op, len(f.repositories))
	}
	if op == opRetention {
		if err := checkPolicy(f.policy); err != nil {
			return err
		}
	}
	return f.validateReportTo(op)
}

// validateReportTo checks --report-to and what kubernetes needs.
func (f *runFlags) validateReportTo(op string) error {
	switch f.reportTo {
	case reportStdout:
		return nil
	case reportKubernetes:
	default:
		return fmt.Errorf("--report-to %q: want stdout or kubernetes", f.reportTo)
	}
	var missing []string
	missing = appendIf(missing, f.namespace == "", "--namespace")
	missing = appendIf(missing, op == opBackup && f.backupSession == "", "--backup-session")
	missing = appendIf(missing, op == opRestore && f.restoreSession == "", "--restore-session")
	if len(missing) > 0 {
		return fmt.Errorf("--report-to kubernetes needs %s", strings.Join(missing, ", "))
	}
	return nil
}

func appendIf(list []string, cond bool, s string) []string {
	if cond {
		return append(list, s)
	}
	return list
}

// taskReporter is where backup and restore report: stdout, and with
// --report-to kubernetes the Snapshots or the RestoreSession as well.
func (f *runFlags) taskReporter(op string, stdout, stderr io.Writer) (Reporter, error) {
	log := NewStdoutReporter(stdout)
	if f.reportTo != reportKubernetes {
		return log, nil
	}
	c, err := f.client(stderr)
	if err != nil {
		return nil, err
	}
	if op == opBackup {
		return teeReporter{log: log, main: NewSnapshotReporter(c, f.namespace, f.backupSession).WithProgressInterval(f.progressInterval)}, nil
	}
	return teeReporter{log: log, main: NewRestoreSessionReporter(c, f.namespace, f.restoreSession).WithProgressInterval(f.progressInterval)}, nil
}

// maintenanceReporter is where retention and forget report: stdout, and
// with --report-to kubernetes the namespace's Snapshots as well.
func (f *runFlags) maintenanceReporter(stdout, stderr io.Writer) (MaintenanceReporter, error) {
	log := NewStdoutReporter(stdout)
	if f.reportTo != reportKubernetes {
		return log, nil
	}
	c, err := f.client(stderr)
	if err != nil {
		return nil, err
	}
	return teeMaintenance{log: log, main: NewSnapshotCleaner(c, f.namespace)}, nil
}

// common resolves the flags backup and restore share.
func (f *runFlags) common(op string, stdout, stderr io.Writer) (Common, error) {
	params, err := f.mergedParams()
	if err != nil {
		return Common{}, err
	}
	rep, err := f.taskReporter(op, stdout, stderr)
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
		Reporter: rep,
		Log:      stderr,
		Locks:    f.lockKeeper(rep, stderr),

		ProgressInterval: f.progressInterval,
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

// stringList is a repeatable flag of plain values.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) repeated()      {}

// Set implements flag.Value.
func (s *stringList) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*s = append(*s, v)
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
