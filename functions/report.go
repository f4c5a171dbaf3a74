package functions

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// Reporter receives what a run does, as it happens. The Kubernetes
// implementation patches the session's objects (BackupSession, Snapshot,
// RestoreSession); StdoutReporter prints JSON lines for local use and tests.
type Reporter interface {
	// Progress reports how far one component has got. It is called often
	// and must return quickly; an implementation may drop updates.
	Progress(ctx context.Context, p Progress)
	// Component reports the final result of one component in one
	// repository.
	Component(ctx context.Context, r ComponentResult) error
	// Done reports the end of the run.
	Done(ctx context.Context, r RunResult) error
}

// Phase is the outcome of a component or a run.
type Phase string

const (
	// PhaseSucceeded means the data is safely stored (backup) or loaded
	// (restore).
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed means it is not; Error says why.
	PhaseFailed Phase = "Failed"
)

// Progress is a component's progress in one repository.
type Progress struct {
	// Operation is "backup" or "restore".
	Operation string `json:"operation"`
	// Repository is the repository's name.
	Repository string `json:"repository"`
	// Component is the component's name.
	Component string `json:"component"`
	// Bytes is how much of the stream has been processed.
	Bytes uint64 `json:"bytes"`
	// Total is the size of the whole stream when known (a restore knows
	// its snapshot's size), else zero.
	Total uint64 `json:"total,omitempty"`
	// Elapsed is the time since the stream started; Bytes over Elapsed
	// is the rate.
	Elapsed Duration `json:"elapsed"`
}

// ComponentResult is the outcome of one component in one repository; for a
// backup it becomes the Snapshot's status.components entry.
type ComponentResult struct {
	// Operation is "backup" or "restore".
	Operation string `json:"operation"`
	// Repository is the repository's name.
	Repository string `json:"repository"`
	// Component is the component's name (the file in the restic snapshot).
	Component string `json:"component"`
	// Driver is the driver's name and version, e.g. "hyperbytedb 0.1.0".
	Driver string `json:"driver,omitempty"`
	// Phase is Succeeded or Failed.
	Phase Phase `json:"phase"`
	// SnapshotID is the restic snapshot made (backup) or read (restore).
	SnapshotID string `json:"resticSnapshotID,omitempty"`
	// Size is the size of the dump in bytes.
	Size uint64 `json:"size"`
	// DataAdded is what the backup added to the repository, before and
	// after compression.
	DataAdded       uint64 `json:"dataAdded,omitempty"`
	DataAddedPacked uint64 `json:"dataAddedPacked,omitempty"`
	// Counts are what the driver says a backup's dump holds, by unit (e.g.
	// points and series); nil when it does not say.
	Counts map[string]uint64 `json:"counts,omitempty"`
	// Restored is what the driver says a restore loaded; nil when it does
	// not say.
	Restored *corev1alpha1.RestoredData `json:"restored,omitempty"`
	// Duration is how long the component took.
	Duration Duration `json:"duration"`
	// Error says why the component failed.
	Error string `json:"error,omitempty"`
	// FailedIn says which side failed a backup: FailedInDriver (the dump)
	// or FailedInRepository (restic, the upload).
	FailedIn string `json:"failedIn,omitempty"`
}

// Values of ComponentResult.FailedIn.
const (
	FailedInDriver     = "driver"
	FailedInRepository = "repository"
)

// RunResult is the outcome of a whole run.
type RunResult struct {
	// Operation is "backup" or "restore".
	Operation string `json:"operation"`
	// Phase is Succeeded when every component succeeded.
	Phase Phase `json:"phase"`
	// Duration is how long the run took.
	Duration Duration `json:"duration"`
	// Error says why the run failed.
	Error string `json:"error,omitempty"`
}

// Duration is a time.Duration that reads as "1.5s" in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// StdoutReporter writes one Event per line as JSON, e.g.
// {"event":"component","component":{"repository":"primary",...}}.
type StdoutReporter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewStdoutReporter returns a reporter writing to w.
func NewStdoutReporter(w io.Writer) *StdoutReporter {
	return &StdoutReporter{w: w}
}

var _ Reporter = (*StdoutReporter)(nil)

// Progress implements Reporter.
func (s *StdoutReporter) Progress(_ context.Context, p Progress) {
	_ = s.emit(Event{Event: "progress", Progress: &p})
}

// Component implements Reporter.
func (s *StdoutReporter) Component(_ context.Context, r ComponentResult) error {
	return s.emit(Event{Event: "component", Component: &r})
}

// Done implements Reporter.
func (s *StdoutReporter) Done(_ context.Context, r RunResult) error {
	return s.emit(Event{Event: "done", Done: &r})
}

// Retention implements MaintenanceReporter.
func (s *StdoutReporter) Retention(_ context.Context, r RetentionResult) error {
	return s.emit(Event{Event: "retention", Retention: &r})
}

// Forget implements MaintenanceReporter.
func (s *StdoutReporter) Forget(_ context.Context, r ForgetResult) error {
	return s.emit(Event{Event: "forget", Forget: &r})
}

var _ MaintenanceReporter = (*StdoutReporter)(nil)

// LockWait implements LockWaitReporter.
func (s *StdoutReporter) LockWait(_ context.Context, w LockWait) {
	_ = s.emit(Event{Event: "lockWait", LockWait: &w})
}

var _ LockWaitReporter = (*StdoutReporter)(nil)

// StorageTrouble implements StorageTroubleReporter.
func (s *StdoutReporter) StorageTrouble(_ context.Context, t StorageTrouble) {
	_ = s.emit(Event{Event: "storageTrouble", StorageTrouble: &t})
}

var _ StorageTroubleReporter = (*StdoutReporter)(nil)

// Event is one line of StdoutReporter's output: its kind, and the field of
// that name.
type Event struct {
	// Event is "progress", "component", "done", "retention", "forget",
	// "lockWait" or "storageTrouble".
	Event     string           `json:"event"`
	Progress  *Progress        `json:"progress,omitempty"`
	Component *ComponentResult `json:"component,omitempty"`
	Done      *RunResult       `json:"done,omitempty"`
	Retention *RetentionResult `json:"retention,omitempty"`
	Forget    *ForgetResult    `json:"forget,omitempty"`
	LockWait  *LockWait        `json:"lockWait,omitempty"`
	// StorageTrouble: restic retries a failing storage, or it answers
	// again (no message).
	StorageTrouble *StorageTrouble `json:"storageTrouble,omitempty"`
}

func (s *StdoutReporter) emit(e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.w.Write(append(line, '\n'))
	return err
}
