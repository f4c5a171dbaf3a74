package backupconfiguration_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/backupconfiguration"
	"github.com/keepsake-dev/keepsake/operator/internal/testenv"
)

// TestAddonInstalledLater checks that a configuration waiting for its Addon
// does not stay NotReady once the Addon appears (the dependency watch
// reacts at once; the backoff re-check would also get there).
func TestAddonInstalledLater(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	late := "late-" + ns
	bc := validConfig(ns)
	bc.Spec.Sessions[0].Addon.Name = late
	env.Create(t, bc)
	conds := func() []metav1.Condition { return bc.Status.Conditions }
	env.WaitCondition(t, bc, conds, corev1alpha1.ConditionAddonResolved, metav1.ConditionFalse, corev1alpha1.ReasonAddonNotFound)
	env.Create(t, &addonsv1alpha1.Addon{
		ObjectMeta: metav1.ObjectMeta{Name: late},
		Spec: addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{{
			Name: taskName, Function: addonName + "-backup", Driver: "/drivers/db",
			Parameters: []addonsv1alpha1.ParameterDefinition{{Name: "url", Required: true}},
		}}},
	})
	env.WaitCondition(t, bc, conds, corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
}

// TestSecretsWatched checks that a Ready configuration turns NotReady
// within seconds when a Secret it names loses a key it needs or is
// deleted, and Ready again when the Secret is fixed: Secrets are watched
// (nothing else wakes the configuration once its first BackupSession is
// Running: its schedule is hours away).
func TestSecretsWatched(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	auth := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-auth"}, StringData: map[string]string{"password": "x"}}
	env.Create(t, auth)
	bc := validConfig(ns)
	bc.Spec.Sessions[0].Addon.Tasks[0].Params["authSecret"] = auth.Name
	bc.Spec.Sessions[0].Scheduler.Schedule = fmt.Sprintf("0 %d * * *", (time.Now().UTC().Hour()+12)%24)
	env.Create(t, bc)
	conds := func() []metav1.Condition { return bc.Status.Conditions }
	env.WaitCondition(t, bc, conds, corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)
	// The pass after Ready creates the first BackupSession; once it runs
	// (its Job never ends here), nothing wakes the configuration.
	first := &corev1alpha1.BackupSession{}
	first.Namespace, first.Name = ns, backupconfiguration.FirstSessionName(bc.Name, sessionName)
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, clientKey(first), first); err != nil {
			return false, err.Error()
		}
		return first.Status.Phase == corev1alpha1.BackupSessionRunning, "first BackupSession is " + string(first.Status.Phase)
	})

	ctx := context.Background()
	password := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: secretName}, password); err != nil {
		t.Fatal(err)
	}
	password.Data = map[string][]byte{"password": []byte("x")}
	if err := env.Client.Update(ctx, password); err != nil {
		t.Fatal(err)
	}
	c := env.WaitCondition(t, bc, conds, corev1alpha1.ConditionSecretsFound, metav1.ConditionFalse, corev1alpha1.ReasonSecretKeyMissing)
	if !strings.Contains(c.Message, "has no key RESTIC_PASSWORD") {
		t.Errorf("message %q does not name the key", c.Message)
	}
	password.Data = map[string][]byte{"RESTIC_PASSWORD": []byte("not-a-real-password")}
	if err := env.Client.Update(ctx, password); err != nil {
		t.Fatal(err)
	}
	env.WaitCondition(t, bc, conds, corev1alpha1.ConditionReady, metav1.ConditionTrue, corev1alpha1.ReasonAllReady)

	if err := env.Client.Delete(ctx, auth); err != nil {
		t.Fatal(err)
	}
	c = env.WaitCondition(t, bc, conds, corev1alpha1.ConditionSecretsFound, metav1.ConditionFalse, corev1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, "parameter authSecret: Secret "+ns+"/db-auth not found") {
		t.Errorf("message %q does not name the Secret", c.Message)
	}
	if bc.Status.Phase != corev1alpha1.BackupConfigurationNotReady {
		t.Errorf("phase %s, want NotReady", bc.Status.Phase)
	}
}

// TestSessionSummary checks that status.sessions reports the newest
// BackupSessions and the latest success.
func TestSessionSummary(t *testing.T) {
	env := testenv.Default
	ns := fixtures(t)
	bc := validConfig(ns)
	env.Create(t, bc)
	first := &corev1alpha1.BackupSession{}
	first.Namespace, first.Name = ns, backupconfiguration.FirstSessionName(bc.Name, sessionName)
	testenv.WaitExists(t, first)
	done := metav1.NewTime(time.Now().Truncate(time.Second))
	// The BackupSession reconciler writes this status too: play the finished
	// run on the latest version, retrying when the two writes cross.
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if err := env.Client.Get(context.Background(), clientKey(first), first); err != nil {
			return err
		}
		first.Status.Phase = corev1alpha1.BackupSessionSucceeded
		first.Status.CompletionTime = &done
		first.Status.Duration = "42s"
		return env.Client.Status().Update(context.Background(), first)
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, clientKey(bc), bc); err != nil {
			return false, err.Error()
		}
		if len(bc.Status.Sessions) != 1 {
			return false, "no session status"
		}
		s := bc.Status.Sessions[0]
		ok := s.LastSuccessfulBackup != nil && s.LastSuccessfulBackup.Equal(&done) && len(s.RecentBackups) == 1 &&
			s.RecentBackups[0].Phase == corev1alpha1.BackupSessionSucceeded && s.RecentBackups[0].Duration == "42s"
		return ok, "session status: " + testenv.JSON(s)
	})
	// History pruning deletes the successful run after failed ones: the
	// latest success stays in the status (and so in the metrics and the
	// KeepsakeBackupMissing alert), though no BackupSession shows it.
	if err := env.Client.Delete(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, clientKey(bc), bc); err != nil {
			return false, err.Error()
		}
		if len(bc.Status.Sessions) != 1 {
			return false, "no session status"
		}
		s := bc.Status.Sessions[0]
		ok := len(s.RecentBackups) == 0 && s.LastSuccessfulBackup != nil && s.LastSuccessfulBackup.Equal(&done)
		return ok, "session status after the successful run was deleted: " + testenv.JSON(s)
	})
}

// TestCronJobName checks the names of CronJobs and first BackupSessions.
func TestCronJobName(t *testing.T) {
	long := strings.Repeat("a", 60)
	tests := map[string]struct {
		// config and session name the CronJob.
		config, session string
		// want is the expected name; empty means only its length and
		// uniqueness are checked.
		want string
	}{
		"short":         {config: "db-backup", session: "frequent", want: "db-backup-frequent"},
		"exactly 52":    {config: strings.Repeat("b", 43), session: "12345678", want: strings.Repeat("b", 43) + "-12345678"},
		"too long":      {config: long, session: "frequent"},
		"too long, too": {config: long, session: "daily"},
	}
	seen := map[string]string{}
	for name, tc := range tests {
		got := backupconfiguration.CronJobName(tc.config, tc.session)
		if tc.want != "" && got != tc.want {
			t.Errorf("%s: CronJobName = %q, want %q", name, got, tc.want)
		}
		if len(got) > 52 || len(backupconfiguration.FirstSessionName(tc.config, tc.session)) > 63 {
			t.Errorf("%s: CronJobName %q (%d) or its first session name is too long", name, got, len(got))
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%s and %s both name their CronJob %q", name, other, got)
		}
		seen[got] = name
	}
}
