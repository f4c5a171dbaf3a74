package functions

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// RepositoryStatusReporter records integrity checks and stored sizes in
// the Repository objects of one namespace. It leaves the conditions and
// Events to the operator, which judges the Repository from them.
type RepositoryStatusReporter struct {
	c         client.Client
	namespace string
}

// NewRepositoryStatusReporter returns a reporter for the Repositories of
// namespace.
func NewRepositoryStatusReporter(c client.Client, namespace string) *RepositoryStatusReporter {
	return &RepositoryStatusReporter{c: c, namespace: namespace}
}

var _ RepositoryReporter = (*RepositoryStatusReporter)(nil)

// Check implements RepositoryReporter: status.integrityCheck gets the
// verdict, status.integrity true or false when restic could judge the
// data, and the size fields the stored size.
func (r *RepositoryStatusReporter) Check(ctx context.Context, res CheckResult) error {
	check := map[string]any{
		"lastCheckTime": metav1.NewTime(res.Time.Truncate(time.Second)), "result": res.Result, "message": res.Message,
		"readDataSubset": nilIfEmpty(res.ReadDataSubset), "job": nilIfEmpty(res.Job), "request": nilIfEmpty(res.Request),
	}
	status := map[string]any{"integrityCheck": check}
	if res.Result != storagev1alpha1.IntegrityError {
		status["integrity"] = res.Result == storagev1alpha1.IntegrityPassed
	}
	if res.StoredBytes > 0 {
		status["size"], status["sizeBytes"] = humanBytes(res.StoredBytes), res.StoredBytes
	}
	return r.patch(ctx, res.Repository, status)
}

// StoredSize implements RepositoryReporter.
func (r *RepositoryStatusReporter) StoredSize(ctx context.Context, repository string, bytes uint64) error {
	return r.patch(ctx, repository, map[string]any{"size": humanBytes(bytes), "sizeBytes": bytes})
}

// patch merges status into Repository name's status, with retries.
func (r *RepositoryStatusReporter) patch(ctx context.Context, name string, status map[string]any) error {
	patch, err := statusMergePatch(status)
	if err != nil {
		return err
	}
	repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: r.namespace, Name: name}}
	err = withRetry(ctx, func(ctx context.Context) error { return r.c.Status().Patch(ctx, repo.DeepCopy(), patch) })
	if err != nil {
		return fmt.Errorf("record in Repository %s/%s: %w", r.namespace, name, err)
	}
	return nil
}

// nilIfEmpty makes an empty string delete its field in a merge patch.
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
