// Package snapshot reconciles Snapshots: a Snapshot with deletionPolicy Delete
// keeps a finalizer until a Job has forgotten its restic snapshots.
package snapshot

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/keepsake-dev/keepsake/operator/internal/access"
)

// Options configure the Jobs the reconciler creates.
type Options struct {
	// Image is the keepsake image.
	Image string
	// ServiceAccount Jobs run as, in the object's namespace.
	ServiceAccount string
	// Access creates that ServiceAccount and its Role.
	Access *access.Provisioner
}

// Setup registers the reconciler with mgr. PLACEHOLDER: not written yet.
func Setup(mgr ctrl.Manager, opts Options) error { return nil }
