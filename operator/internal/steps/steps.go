// Package steps runs a reconciliation pass the way every Keepsake
// reconciler does: as a list of steps over one pass's state, each of which
// may stop the pass with a result.
package steps

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
)

// Step is one stage of a pass over state P. It returns a non-nil result to
// stop the pass with that result.
type Step[P any] func(ctx context.Context, p P) (*ctrl.Result, error)

// Run runs steps in order until one fails or stops the pass.
func Run[P any](ctx context.Context, p P, steps ...Step[P]) (ctrl.Result, error) {
	for _, s := range steps {
		result, err := s(ctx, p)
		if err != nil {
			return ctrl.Result{}, err
		}
		if result != nil {
			return *result, nil
		}
	}
	return ctrl.Result{}, nil
}
