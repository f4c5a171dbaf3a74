package jobs

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// Jobs read the Secrets, ConfigMaps and namespaces their repositories
// need past the cache, and copy Secrets of other namespaces beside the Job.
// +kubebuilder:rbac:groups="",resources=secrets;configmaps;namespaces,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create

// Create creates job and then what it mounts that must belong to it: the
// copies of Secrets of other namespaces (repos may be nil). exists reports
// a Job of that name already there, which the caller must check is its own.
//
// A Job the API server refuses (Invalid, Forbidden: a duplicate mount path,
// a quota, a Pod Security violation) is a *Problem with reason
// JobCreationFailed and the API's message: retrying cannot help, so the
// reconciler fails its session with that message instead of retrying
// forever.
func Create(ctx context.Context, c client.Client, job *batchv1.Job, repos *Repositories) (exists bool, err error) {
	err = c.Create(ctx, job)
	switch {
	case apierrors.IsAlreadyExists(err):
		return true, nil
	case Refused(err):
		return false, &Problem{Reason: corev1alpha1.ReasonJobCreationFailed, Err: fmt.Errorf("the API server refused Job %s: %w", job.Name, err)}
	case err != nil:
		return false, fmt.Errorf("create Job %s: %w", job.Name, err)
	}
	if repos != nil {
		if err := repos.createCopies(ctx, c, job); err != nil {
			return false, err
		}
	}
	return false, nil
}

// Refused reports whether the API server refused an object for good: it is
// invalid, or forbidden (by RBAC, admission or quota), as opposed to a
// transient failure worth retrying.
func Refused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err)
}
