// Package sdk is the public driver SDK of Keepsake.
//
// A driver does the database-specific half of a backup: it dumps a database
// into a stream and loads that stream back; optionally it says what a dump
// holds (BackupRequest.SetCounts) and counts a stored dump again
// (Verifier), which verification compares. Keepsake's runtime (`keepsake
// run backup|restore`, inside a Job) starts the driver binary as a
// hashicorp/go-plugin gRPC plugin, feeds the stream to restic and back, and
// records the outcome. Authors implement Driver and call Serve from main:
//
//	func main() { sdk.Serve(mydriver.New()) }
//
// The host side (Open, Client) is used by the runtime and by tests.
//
// Guarantees the SDK gives both sides: streams are chunked with gRPC flow
// control, so a slow reader slows the writer down and nothing buffers a
// whole dump; every stream ends with an explicit end marker carrying the
// byte count, so a truncated stream is always an error; a panic inside a
// Driver method becomes an error of that call; a driver process that dies
// is reported as a crash with the tail of its stderr.
package sdk

import (
	"context"
	"io"
)

// Driver is what a driver author implements. The runtime starts one driver
// process per task and calls Backup or Restore once; Info may be called
// before and during either. A verify Job calls a Verifier's Verify once
// per component instead.
type Driver interface {
	// Info describes the driver. It must be cheap and must not contact the
	// database.
	Info(ctx context.Context) (Info, error)
	// Backup writes a complete dump of req.Target to w and returns nil, or
	// returns an error; on error whatever was written is discarded by the
	// host (no snapshot is made). The output should be deterministic for
	// unchanged data so the repository deduplicates it. A driver that can
	// tell what the dump holds calls req.SetCounts before returning nil;
	// the runtime records the counts with the backup, and a Verifier's
	// Verify later recounts the stored dump against them.
	Backup(ctx context.Context, req *BackupRequest, w io.Writer) error
	// Restore loads a dump made by Backup from r into req.Target. It must
	// read r to io.EOF before returning nil: the SDK reports a Restore that
	// returns early as an error, so data is never dropped silently. It
	// returns what it loaded, which the runtime shows in the restore's
	// status; the zero Restored when it cannot tell.
	Restore(ctx context.Context, req *RestoreRequest, r io.Reader) (Restored, error)
}

// Verifier is a Driver that can read a dump back and count it, so that
// verification checks more than the dump's bytes. It is optional: the SDK
// answers Verify of a driver without it as unimplemented, and the runtime
// then checks the bytes only.
type Verifier interface {
	Driver
	// Verify reads a dump made by Backup from r to io.EOF, parsing all of
	// it, and returns what it holds, under the names Backup gave its counts
	// (SetCounts). It writes nothing anywhere and must not need the
	// database: the runtime runs it in a verify Job, away from the target.
	// A dump that does not parse is an error that says where.
	Verify(ctx context.Context, req *VerifyRequest, r io.Reader) (Counts, error)
}

// Counts are what a dump holds, by unit, plural and lower case, e.g.
// {"points": 120000, "series": 40}. A driver may use any names; the
// runtime compares the counts of a backup with those Verify finds, name by
// name.
type Counts map[string]uint64

// BackupResult is the host's view of a finished Backup.
type BackupResult struct {
	// Bytes is how much of the dump reached the host's writer.
	Bytes uint64
	// Counts are what the driver says the dump holds; nil when it does not
	// say.
	Counts Counts
}

// VerifyResult is the host's view of a finished Verify.
type VerifyResult struct {
	// Bytes is how much of the dump the driver read.
	Bytes uint64
	// Counts are what the driver counted in the dump.
	Counts Counts
}

// Restored says what a Restore loaded, in the driver's own terms, so a user
// can compare it with what they expected. Every field is optional; the
// zero value says nothing (drivers built before it existed send that).
type Restored struct {
	// ObjectKind names what Objects are, plural and lower case, e.g.
	// "databases", "tables" or "buckets".
	ObjectKind string
	// Objects are the names of the top-level objects restored, e.g. the
	// databases.
	Objects []string
	// Items counts the items restored by unit, plural and lower case, e.g.
	// {"points": 120000} or {"rows": 5000, "tables": 12}.
	Items map[string]uint64
}

// IsZero reports whether r says nothing.
func (r Restored) IsZero() bool {
	return r.ObjectKind == "" && len(r.Objects) == 0 && len(r.Items) == 0
}

// RestoreResult is the host's view of a finished Restore.
type RestoreResult struct {
	// Bytes is how much of the stream reached the driver.
	Bytes uint64
	// Restored is what the driver says it loaded.
	Restored Restored
}

// Info describes a driver.
type Info struct {
	// Name is the driver's name, e.g. "hyperbytedb".
	Name string
	// Version is the driver's version, e.g. "0.1.0".
	Version string
	// Parameters are the parameters Backup and Restore accept. The SDK
	// fills in defaults and rejects missing required or unknown parameters
	// before calling the driver.
	Parameters []Parameter
	// Capabilities say what the driver can do.
	Capabilities []Capability
}

// Parameter declares one parameter of a driver.
type Parameter struct {
	// Name is the key in Request.Params.
	Name string
	// Usage is a one-line description for users.
	Usage string
	// Required parameters must be given (a default does not count).
	Required bool
	// Default is used when the parameter is not given.
	Default string
}

// Capability is something a driver can do.
type Capability string

const (
	// CapabilityBackup means Backup is implemented.
	CapabilityBackup Capability = "backup"
	// CapabilityRestore means Restore is implemented.
	CapabilityRestore Capability = "restore"
	// CapabilityVerify means Verify is implemented (the driver is a
	// Verifier). The SDK adds it to the Info of every Verifier, so a
	// driver need not declare it.
	CapabilityVerify Capability = "verify"
)

// Target is the Kubernetes object a backup or restore works on.
type Target struct {
	// APIGroup of the object's kind; empty for the core group.
	APIGroup string
	// Kind of the object, e.g. "HyperbytedbCluster" or "Service".
	Kind string
	// Name of the object.
	Name string
	// Namespace of the object.
	Namespace string
}

// Request is what every Backup and Restore call carries.
type Request struct {
	// Target is the object to back up or restore.
	Target Target
	// Params are the resolved parameters: defaults filled in, required ones
	// present, no unknown keys.
	Params map[string]string
	// Credentials maps a credential name to the path of its mounted Secret
	// (a file, or a directory with one file per key). Secrets never travel
	// through params, env or the stream.
	Credentials map[string]string
	// Component is the name of the component being backed up or restored.
	Component string
}

// BackupRequest is the request of Driver.Backup.
type BackupRequest struct {
	Request

	// counts are what Backup reported with SetCounts.
	counts Counts
}

// SetCounts records what the dump holds, for the host to store with the
// backup. Call it from Backup, before returning nil; a later call
// replaces the counts of an earlier one. The SDK sends them after the
// last byte of the dump, so counts that are known only at the end are
// fine.
func (r *BackupRequest) SetCounts(c Counts) { r.counts = c }

// VerifyRequest is the request of Verifier.Verify. Target and Params are
// what the runtime knows of the backup (often nothing); Component names
// the dump.
type VerifyRequest struct {
	Request
}

// RestoreRequest is the request of Driver.Restore.
type RestoreRequest struct {
	Request
}
