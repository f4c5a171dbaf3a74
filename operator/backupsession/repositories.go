package backupsession

import (
	"context"
	"errors"

	ctrl "sigs.k8s.io/controller-runtime"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/sessionrepo"
)

// resolveRepositories finds the Repository each repository of the session
// writes to. A configuration that moved a session repository made a new
// Repository for the new location (sessionrepo), so the name in the
// configuration is not always the Repository's.
func (r *Reconciler) resolveRepositories(ctx context.Context, p *pass) (*ctrl.Result, error) {
	names, err := r.sessionRepositories(ctx, p)
	var conflict *sessionrepo.ConflictError
	if errors.As(err, &conflict) {
		return r.fail(p, corev1alpha1.ReasonRepositoryConflict, conflict), nil
	}
	if err != nil {
		return nil, err
	}
	p.repos = names
	return nil, nil
}

// sessionRepositories returns the Repository of each repository of the
// session, in the session's order. Once the session recorded its
// Snapshots (in that order), their Repositories are the answer: a
// configuration moving a repository meanwhile must move neither a running
// backup nor the retention after it. Before, sessionrepo.Resolve names
// them, as it names the Repositories the configuration creates.
func (r *Reconciler) sessionRepositories(ctx context.Context, p *pass) ([]string, error) {
	names := make([]string, 0, len(p.session.Repositories))
	if refs := p.bks.Status.Snapshots; len(refs) == len(p.session.Repositories) {
		for _, ref := range refs {
			names = append(names, ref.Repository)
		}
		return names, nil
	}
	for _, ri := range p.session.Repositories {
		res, err := sessionrepo.Resolve(ctx, r.Client, p.bc, ri.Name, sessionrepo.Spec(p.bc, ri))
		if err != nil {
			return nil, err
		}
		names = append(names, res.Name)
	}
	return names, nil
}
