package jobs

import (
	"crypto/sha256"
	"encoding/hex"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
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
