package postgres

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/keepsake-dev/keepsake/addons/sdk"
)

// Parameter names, shared by the driver's Info and the Addon manifest.
const (
	ParamHost                = "host"
	ParamPort                = "port"
	ParamAuthSecret          = "authSecret"
	ParamSSLMode             = "sslMode"
	ParamMaintenanceDatabase = "maintenanceDatabase"
	ParamDatabases           = "databases"
	ParamDatabaseMapping     = "databaseMapping"
	ParamMode                = "mode"
	ParamGlobals             = "globals"
)

// Restore modes: what to do with a target database that already exists.
const (
	// ModeCreate creates missing databases and restores into existing
	// ones only when they hold no tables, sequences, views or large objects.
	ModeCreate = "create"
	// ModeReplace drops an existing database (disconnecting its sessions)
	// and creates it again.
	ModeReplace = "replace"
)

// parameters are the parameters the driver declares; see its Info.
var parameters = []sdk.Parameter{
	{Name: ParamHost, Usage: "server host; default <target>.<namespace>.svc"},
	{Name: ParamPort, Usage: "server port", Default: "5432"},
	{Name: ParamAuthSecret, Usage: "Secret with username and password keys, mounted as credential authSecret"},
	{Name: ParamSSLMode, Usage: "libpq sslmode: disable, allow, prefer, require, verify-ca or verify-full", Default: "prefer"},
	{Name: ParamMaintenanceDatabase, Usage: "database to connect to for roles and for creating and dropping databases", Default: "postgres"},
	{Name: ParamDatabases, Usage: "comma-separated databases; default all that accept connections (on restore: all in the backup)"},
	{Name: ParamDatabaseMapping, Usage: "restore: rename databases, old:new,old2:new2"},
	{Name: ParamMode, Usage: "restore: create refuses a non-empty existing database, replace drops and re-creates it", Default: ModeCreate},
	{Name: ParamGlobals, Usage: "restore: restore roles and tablespaces first: true or false", Default: "true"},
}

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// conn is how the tools reach the server. It becomes libpq's environment:
// nothing of it, above all the password, is ever an argument.
type conn struct {
	host, port, user, password, sslMode string
	maintenance                         string
}

// connection reads the connection parameters and the mounted authSecret.
func connection(req sdk.Request) (conn, error) {
	c := conn{host: req.Params[ParamHost], port: req.Params[ParamPort], sslMode: req.Params[ParamSSLMode],
		maintenance: req.Params[ParamMaintenanceDatabase]}
	if c.host == "" {
		t := req.Target
		if t.Name == "" || t.Namespace == "" {
			return c, fmt.Errorf("parameter %s is not set and the target has no name and namespace to derive it from", ParamHost)
		}
		c.host = fmt.Sprintf("%s.%s.svc", t.Name, t.Namespace)
	}
	if !slices.Contains(sslModes, c.sslMode) {
		return c, fmt.Errorf("%s: %q is not one of %s", ParamSSLMode, c.sslMode, strings.Join(sslModes, ", "))
	}
	if c.maintenance == "" {
		return c, fmt.Errorf("parameter %s is empty", ParamMaintenanceDatabase)
	}
	var err error
	c.user, c.password, err = credentials(req)
	return c, err
}

// credentials reads username and password from the mounted authSecret, a
// directory with one file per key as Kubernetes mounts a Secret. Without
// an authSecret libpq's defaults apply (user of the process, no password).
func credentials(req sdk.Request) (user, pass string, err error) {
	dir, mounted := req.Credentials[ParamAuthSecret]
	if !mounted {
		if name := req.Params[ParamAuthSecret]; name != "" {
			return "", "", fmt.Errorf("authSecret %q is set but not mounted as credential %s", name, ParamAuthSecret)
		}
		return "", "", nil
	}
	u, err := os.ReadFile(filepath.Join(dir, "username"))
	if err != nil {
		return "", "", fmt.Errorf("read authSecret: %w", err)
	}
	p, err := os.ReadFile(filepath.Join(dir, "password"))
	if err != nil && !os.IsNotExist(err) {
		return "", "", fmt.Errorf("read authSecret: %w", err)
	}
	return strings.TrimRight(string(u), "\r\n"), strings.TrimRight(string(p), "\r\n"), nil
}

// env is the libpq environment of a tool connecting to database.
// PGDATABASE is not expanded as a connection string, unlike a -d argument,
// so a database name is only ever a name.
func (c conn) env(database string) []string {
	env := []string{"PGHOST=" + c.host, "PGPORT=" + c.port, "PGSSLMODE=" + c.sslMode, "PGDATABASE=" + database,
		"PGCONNECT_TIMEOUT=30", "PGOPTIONS=-c client_min_messages=warning"}
	if c.user != "" {
		env = append(env, "PGUSER="+c.user)
	}
	if c.password != "" {
		env = append(env, "PGPASSWORD="+c.password)
	}
	return env
}

// restoreOptions are the restore parameters, checked.
type restoreOptions struct {
	databases []string          // of the backup; all when empty
	rename    map[string]string // backup name -> target name
	mode      string
	globals   bool
}

func parseRestoreOptions(params map[string]string) (restoreOptions, error) {
	opts := restoreOptions{databases: sdk.List(params[ParamDatabases]), mode: params[ParamMode]}
	if opts.mode != ModeCreate && opts.mode != ModeReplace {
		return opts, fmt.Errorf("%s: %q is neither %s nor %s", ParamMode, opts.mode, ModeCreate, ModeReplace)
	}
	switch params[ParamGlobals] {
	case "true":
		opts.globals = true
	case "false":
	default:
		return opts, fmt.Errorf("%s: %q is neither true nor false", ParamGlobals, params[ParamGlobals])
	}
	var err error
	opts.rename, err = sdk.Mapping(ParamDatabaseMapping, params[ParamDatabaseMapping])
	return opts, err
}

// target is the name database of the backup is restored as.
func (o restoreOptions) target(database string) string {
	if to, ok := o.rename[database]; ok {
		return to
	}
	return database
}

// selected says whether database of the backup is to be restored.
func (o restoreOptions) selected(database string) bool {
	return len(o.databases) == 0 || slices.Contains(o.databases, database)
}
