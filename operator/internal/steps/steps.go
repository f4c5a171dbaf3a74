// Package steps runs a reconciliation pass the way every Keepsake
// reconciler does: as a list of steps over one pass's state, each of which
// may stop the pass with a result. At debug level (V(1)) it logs which step
// decided the pass's outcome, so `--log-level debug` shows the operator's
// decisions object by object; errors are not logged here, since
// controller-runtime logs each returned error once, with the object.
package steps

import (
	"context"
	"reflect"
	"runtime"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Step is one stage of a pass over state P. It returns a non-nil result to
// stop the pass with that result.
type Step[P any] func(ctx context.Context, p P) (*ctrl.Result, error)

// Run runs steps in order until one fails or stops the pass.
func Run[P any](ctx context.Context, p P, steps ...Step[P]) (ctrl.Result, error) {
	logger := log.FromContext(ctx).V(1)
	for _, s := range steps {
		result, err := s(ctx, p)
		if err != nil {
			return ctrl.Result{}, err
		}
		if result != nil {
			logger.Info("pass stopped", "step", Name(s), "requeueAfter", result.RequeueAfter.String())
			return *result, nil
		}
	}
	logger.Info("pass went through every step")
	return ctrl.Result{}, nil
}

// Name is the step's function or method name, e.g. "ensureJob".
func Name[P any](s Step[P]) string {
	full := runtime.FuncForPC(reflect.ValueOf(s).Pointer()).Name()
	return strings.TrimSuffix(full[strings.LastIndex(full, ".")+1:], "-fm")
}
