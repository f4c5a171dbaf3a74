package backupconfiguration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
)

// TestCheckSchedules checks the operator's own schedule check, which
// backs the schema's rules up (a CRD of an older chart lets more through):
// ranges, steps larger than their field, TZ= prefixes and time zones.
func TestCheckSchedules(t *testing.T) {
	tests := map[string]struct {
		// schedule and timeZone are the session's.
		schedule string
		timeZone string
		// wantErr is part of the InvalidSchedule or InvalidTimeZone
		// message; "" means the schedule is accepted.
		wantErr string
	}{
		"every 15 minutes on weekdays": {schedule: "*/15 2-4 1,15 * 1-5"},
		"macro":                        {schedule: "@daily"},
		"every":                        {schedule: "@every 1h30m"},
		"names":                        {schedule: "0 3 * JAN,JUL MON-FRI"},
		"largest steps":                {schedule: "*/59 */23 */31 */12 */6"},
		"minute step over 59":          {schedule: "*/61 * * * *", wantErr: "step /61 of the minute field"},
		"minute step of 60":            {schedule: "*/60 * * * *", wantErr: "step /60 of the minute field"},
		"hour step over 23":            {schedule: "0 */24 * * *", wantErr: "step /24 of the hour field"},
		"day-of-week step in a list":   {schedule: "0 0 * * 1,0/7", wantErr: "step /7 of the day of week field"},
		"minute out of range":          {schedule: "61 * * * *", wantErr: "61"},
		"hour out of range":            {schedule: "0 25 * * *", wantErr: "25"},
		"time zone in the schedule":    {schedule: "TZ=UTC 0 2 * * *", wantErr: "scheduler.timeZone"},
		"unknown time zone":            {schedule: "0 2 * * *", timeZone: "Mars/Olympus", wantErr: "Mars/Olympus"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := corev1alpha1.Session{Name: "s", Scheduler: corev1alpha1.SchedulerSpec{Schedule: tc.schedule}}
			if tc.timeZone != "" {
				s.Scheduler.TimeZone = ptr.To(tc.timeZone)
			}
			p := &pass{
				bc:        &corev1alpha1.BackupConfiguration{Spec: corev1alpha1.BackupConfigurationSpec{Sessions: []corev1alpha1.Session{s}}},
				schedules: map[string]cron.Schedule{},
				locations: map[string]*time.Location{},
			}
			prob, err := (&Reconciler{}).checkSchedules(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantErr == "" && prob != nil:
				t.Errorf("refused: %s: %s", prob.reason, prob.message)
			case tc.wantErr != "" && prob == nil:
				t.Errorf("accepted; want a problem mentioning %q", tc.wantErr)
			case prob != nil && (!prob.invalid || !strings.Contains(prob.message, tc.wantErr)):
				t.Errorf("problem %s %q (invalid %v), want an invalid one mentioning %q", prob.reason, prob.message, prob.invalid, tc.wantErr)
			}
		})
	}
}
