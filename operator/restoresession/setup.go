// Package restoresession reconciles RestoreSessions: it resolves the Snapshot,
// builds the restore Job from the Addon's restore task and follows it.
package restoresession

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
