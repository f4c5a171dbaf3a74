// Package calls holds what the SDK's two sides and package sdktest share
// about a call's life, beyond the wire protocol.
package calls

import "context"

// ReturnedAfterCancel is the message the driver logs when its Backup or
// Restore returns after the host cancelled the call: the proof, in the
// host's log, that the driver stopped rather than working on unseen.
const ReturnedAfterCancel = "driver call returned after cancellation"

// StartedHeader is the gRPC header the driver sends once its Restore has
// begun: before it, a cancelled call may never have reached the driver.
const StartedHeader = "keepsake-restore-started"

type startedKey struct{}

// WithStarted returns a context whose Restore calls run started once the
// driver's Restore has begun. Only sdktest needs to know.
func WithStarted(ctx context.Context, started func()) context.Context {
	return context.WithValue(ctx, startedKey{}, started)
}

// Started returns the function WithStarted stored in ctx, or nil.
func Started(ctx context.Context) func() {
	f, _ := ctx.Value(startedKey{}).(func())
	return f
}
