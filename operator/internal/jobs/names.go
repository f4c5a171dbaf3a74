package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MaxName is the longest Job name: the Job controller copies it into a
// label of the Job's pods, and label values hold at most 63 characters.
const MaxName = 63

// ShortName returns name when it fits in limit characters, otherwise its
// beginning and a hash of all of it, so distinct names stay distinct.
func ShortName(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	hash := hex.EncodeToString(sum[:])[:10]
	return name[:limit-len(hash)-1] + "-" + hash
}

// Outcome returns the Job's true Complete or Failed condition; both nil
// while it runs.
func Outcome(job *batchv1.Job) (done, failed *batchv1.JobCondition) {
	for i, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			done = &job.Status.Conditions[i]
		case batchv1.JobFailed:
			failed = &job.Status.Conditions[i]
		}
	}
	return done, failed
}

// Find returns the Job key names, or nil when there is none. It asks the
// API server when the cache has no such Job: the cache may not hold one
// created just before a restart, and a Job must never be created twice.
func Find(ctx context.Context, cached, live client.Reader, key client.ObjectKey) (*batchv1.Job, error) {
	var job batchv1.Job
	err := cached.Get(ctx, key, &job)
	if apierrors.IsNotFound(err) {
		err = live.Get(ctx, key, &job)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Job %s: %w", key.Name, err)
	}
	return &job, nil
}
