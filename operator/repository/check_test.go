package repository

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

func TestNextCheck(t *testing.T) {
	created := time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)
	last := time.Date(2026, 3, 4, 2, 0, 0, 0, time.UTC)
	now := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		// schedule is spec.integrityCheck.schedule; "" leaves integrityCheck unset.
		schedule string
		// lastCheck is status.integrityCheck.lastCheckTime; zero: never checked.
		lastCheck time.Time
		// request and answered are the annotation and the request the last
		// check answered.
		request, answered string
		// want is the next check; zero: none scheduled.
		want time.Time
		// err is a fragment of the error, if one is expected.
		err string
	}{
		"nothing scheduled":          {},
		"interval from creation":     {schedule: "24h", want: created.Add(24 * time.Hour)},
		"interval from the last":     {schedule: "168h", lastCheck: last, want: last.Add(168 * time.Hour)},
		"cron after the last":        {schedule: "0 3 * * 0", lastCheck: last, want: time.Date(2026, 3, 8, 3, 0, 0, 0, time.UTC)},
		"request not answered":       {request: "r1", answered: "r0", want: now},
		"request answered":           {schedule: "24h", lastCheck: last, request: "r1", answered: "r1", want: last.Add(24 * time.Hour)},
		"request without a schedule": {request: "r1", want: now},
		"interval too short":         {schedule: "10s", err: "at least 1m"},
		"neither interval nor cron":  {schedule: "weekly", err: "neither an interval"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
			if tc.schedule != "" {
				repo.Spec.IntegrityCheck = &storagev1alpha1.IntegrityCheck{Schedule: tc.schedule}
			}
			if tc.request != "" {
				repo.Annotations = map[string]string{storagev1alpha1.AnnotationCheckRequested: tc.request}
			}
			if !tc.lastCheck.IsZero() || tc.answered != "" {
				repo.Status.IntegrityCheck = &storagev1alpha1.IntegrityCheckStatus{Request: tc.answered}
				if !tc.lastCheck.IsZero() {
					repo.Status.IntegrityCheck.LastCheckTime = &metav1.Time{Time: tc.lastCheck}
				}
			}
			got, err := nextCheck(repo, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("next check %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
