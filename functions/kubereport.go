package functions

import (
	"context"
	"encoding/json"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Bounds of the Kubernetes reporters: a final result is retried for about
// reportTimeout; a progress patch gets one try of progressTimeout.
const (
	reportTimeout   = 30 * time.Second
	progressTimeout = 10 * time.Second
)

// reportBackoff spreads retries of a final result over some 20 s.
var reportBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 8, Cap: 10 * time.Second}

// withRetry runs fn until it succeeds, fails for good, or reportTimeout
// passes; fn gets the bounded context. Conflicts are retried too: fn
// reads afresh each time.
func withRetry(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	return retry.OnError(reportBackoff, func(err error) bool { return ctx.Err() == nil && transient(err) },
		func() error { return fn(ctx) })
}

// transient reports whether err may go away by itself: API server
// overload or restarts, conflicts, network trouble.
func transient(err error) bool {
	switch {
	case apierrors.IsConflict(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsTooManyRequests(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
		return true
	}
	return utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) ||
		utilnet.IsProbableEOF(err) || utilnet.IsTimeout(err)
}

// statusMergePatch is a JSON merge patch of an object's status: it needs no
// read and cannot conflict.
func statusMergePatch(status any) (client.Patch, error) {
	data, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return nil, err
	}
	return client.RawPatch(types.MergePatchType, data), nil
}
