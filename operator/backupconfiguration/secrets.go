package backupconfiguration

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	addonsv1alpha1 "github.com/keepsake-dev/keepsake/apis/addons/v1alpha1"
	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
)

// secretNeed is a Secret the configuration names and the keys the Jobs
// read from it.
type secretNeed struct {
	// what says who names the Secret, for the message.
	what string
	key  types.NamespacedName
	keys []string
}

// checkSecrets makes sure every Secret the configuration names exists with
// the keys its Jobs read: each repository's encryption Secret
// (RESTIC_PASSWORD) and each secret-typed task parameter. Secrets are read
// live (the operator caches only their metadata, for the watch that brings
// a configuration back here when a Secret it names is created, changed or
// deleted), so the configuration's readiness follows its Secrets within
// seconds. Storage credentials are the BackupStorage's to check
// (StorageReady).
func (r *Reconciler) checkSecrets(ctx context.Context, p *pass) (*problem, error) {
	needs, err := r.secretNeeds(ctx, p.bc)
	if err != nil {
		return nil, err
	}
	for _, n := range needs {
		if prob, err := r.checkSecret(ctx, n); prob != nil || err != nil {
			return prob, err
		}
	}
	return nil, nil
}

// secretNeeds lists the Secrets of the configuration, in spec order.
func (r *Reconciler) secretNeeds(ctx context.Context, bc *corev1alpha1.BackupConfiguration) ([]secretNeed, error) {
	var needs []secretNeed
	for _, s := range bc.Spec.Sessions {
		for _, ri := range s.Repositories {
			needs = append(needs, secretNeed{
				what: fmt.Sprintf("session %s: repository %s: encryptionSecret", s.Name, ri.Name),
				key:  types.NamespacedName{Namespace: namespaceOr(ri.EncryptionSecret.Namespace, bc.Namespace), Name: ri.EncryptionSecret.Name},
				keys: []string{jobs.PasswordKey},
			})
		}
		params, err := r.secretParams(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, param := range sortedKeys(params) {
			needs = append(needs, secretNeed{
				what: fmt.Sprintf("session %s: parameter %s", s.Name, param),
				key:  types.NamespacedName{Namespace: bc.Namespace, Name: params[param]},
			})
		}
	}
	return needs, nil
}

// secretParams returns the secret-typed parameters a session sets (or
// defaults), by parameter name. An Addon or task not found names none:
// AddonResolved reports it.
func (r *Reconciler) secretParams(ctx context.Context, s corev1alpha1.Session) (map[string]string, error) {
	var a addonsv1alpha1.Addon
	if err := r.Client.Get(ctx, types.NamespacedName{Name: s.Addon.Name}, &a); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Addon %s: %w", s.Addon.Name, err)
	}
	params := map[string]string{}
	for _, ref := range s.Addon.Tasks {
		task := findTask(a.Spec.BackupTasks, ref.Name)
		if task == nil {
			continue
		}
		for _, def := range task.Parameters {
			value, set := ref.Params[def.Name]
			if !set && def.Default != nil {
				value = *def.Default
			}
			if def.Type == addonsv1alpha1.ParameterSecret && value != "" {
				params[def.Name] = value
			}
		}
	}
	return params, nil
}

// checkSecret reads one Secret and looks for its keys; the message names
// the Secret and the key, never a value.
func (r *Reconciler) checkSecret(ctx context.Context, n secretNeed) (*problem, error) {
	var secret corev1.Secret
	if err := r.APIReader.Get(ctx, n.key, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return missing(corev1alpha1.ReasonSecretNotFound, "%s: Secret %s not found", n.what, n.key), nil
		}
		return nil, fmt.Errorf("get Secret %s: %w", n.key, err)
	}
	for _, k := range n.keys {
		if len(secret.Data[k]) == 0 {
			return missing(corev1alpha1.ReasonSecretKeyMissing, "%s: Secret %s has no key %s, or an empty one", n.what, n.key, k), nil
		}
	}
	return nil, nil
}
