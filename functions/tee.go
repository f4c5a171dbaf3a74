package functions

import "context"

// teeReporter reports to the Job's log (a StdoutReporter) and then to
// where the result counts (the Kubernetes reporters), whose error it
// returns.
type teeReporter struct {
	log  *StdoutReporter
	main Reporter
}

var _ Reporter = teeReporter{}

// Progress implements Reporter.
func (t teeReporter) Progress(ctx context.Context, p Progress) {
	t.log.Progress(ctx, p)
	t.main.Progress(ctx, p)
}

// Component implements Reporter.
func (t teeReporter) Component(ctx context.Context, r ComponentResult) error {
	_ = t.log.Component(ctx, r)
	return t.main.Component(ctx, r)
}

// Done implements Reporter.
func (t teeReporter) Done(ctx context.Context, r RunResult) error {
	_ = t.log.Done(ctx, r)
	return t.main.Done(ctx, r)
}

// teeMaintenance is teeReporter for retention and forget runs.
type teeMaintenance struct {
	log  *StdoutReporter
	main MaintenanceReporter
}

var _ MaintenanceReporter = teeMaintenance{}

// Retention implements MaintenanceReporter.
func (t teeMaintenance) Retention(ctx context.Context, r RetentionResult) error {
	_ = t.log.Retention(ctx, r)
	return t.main.Retention(ctx, r)
}

// Forget implements MaintenanceReporter.
func (t teeMaintenance) Forget(ctx context.Context, r ForgetResult) error {
	_ = t.log.Forget(ctx, r)
	return t.main.Forget(ctx, r)
}

// LockWait implements LockWaitReporter.
func (t teeReporter) LockWait(ctx context.Context, w LockWait) {
	t.log.LockWait(ctx, w)
	if rep, ok := t.main.(LockWaitReporter); ok {
		rep.LockWait(ctx, w)
	}
}

// LockWait implements LockWaitReporter.
func (t teeMaintenance) LockWait(ctx context.Context, w LockWait) {
	t.log.LockWait(ctx, w)
	if rep, ok := t.main.(LockWaitReporter); ok {
		rep.LockWait(ctx, w)
	}
}

// StorageTrouble implements StorageTroubleReporter.
func (t teeReporter) StorageTrouble(ctx context.Context, st StorageTrouble) {
	t.log.StorageTrouble(ctx, st)
	if rep, ok := t.main.(StorageTroubleReporter); ok {
		rep.StorageTrouble(ctx, st)
	}
}
