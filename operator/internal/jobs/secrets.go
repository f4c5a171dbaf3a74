package jobs

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// SharedDir holds the copies of Secrets from other namespaces, one
// directory per source namespace and name.
const SharedDir = "/keepsake/shared"

// SharedPath returns where a Job mounts its copy of Secret name of
// namespace ns.
func SharedPath(ns, name string) string { return path.Join(SharedDir, ns, name) }

// CopyName names the i-th Secret copy of Job job.
func CopyName(job string, i int) string { return fmt.Sprintf("%s-copy-%d", job, i) }

// secretCopy is a Secret of another namespace a Job needs: a BackupStorage's
// credentials or CA bundle in the storage's namespace, or a shared
// encryption Secret. Create copies it into the Job's namespace, owned by the
// Job, so it lives exactly as long as the Job and nothing but the Job's pod
// mounts it; the source never leaves its namespace otherwise.
type secretCopy struct {
	namespace, name string
	// data are the keys copied (all of them unless keys were asked for).
	data map[string][]byte
}

// secret makes Secret name of namespace src available to a Job of namespace
// ns and returns the directory it is mounted at: the Secret itself when
// src is ns, else a copy (only keys, when given). A missing Secret or key
// is a *Problem with reason.
func (set *Repositories) secret(ctx context.Context, ns, src, name string, keys []string, reason string) (string, error) {
	var s corev1.Secret
	if err := set.live.Get(ctx, client.ObjectKey{Namespace: src, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", NewProblem(reason, "Secret %s/%s not found", src, name)
		}
		return "", fmt.Errorf("get Secret %s/%s: %w", src, name, err)
	}
	for _, k := range keys {
		if len(s.Data[k]) == 0 {
			return "", NewProblem(reason, "Secret %s/%s has no key %s", src, name, k)
		}
	}
	if src == ns {
		set.AddSecret(name)
		return SecretPath(name), nil
	}
	set.addCopy(src, name, s.Data, keys)
	return SharedPath(src, name), nil
}

// addCopy records a copy of Secret ns/name, once; keys nil copies all.
func (set *Repositories) addCopy(ns, name string, data map[string][]byte, keys []string) {
	i := slices.IndexFunc(set.copies, func(c *secretCopy) bool { return c.namespace == ns && c.name == name })
	if i < 0 {
		set.copies = append(set.copies, &secretCopy{namespace: ns, name: name, data: map[string][]byte{}})
		i = len(set.copies) - 1
	}
	cp := set.copies[i]
	if keys == nil {
		for k, v := range data {
			cp.data[k] = v
		}
		return
	}
	for _, k := range keys {
		cp.data[k] = data[k]
	}
}

// encryptionSecret makes the repository's encryption Secret available and
// returns its directory. One of another namespace is used only if that
// Secret allows namespace ns in its AnnotationAllowFrom annotation:
// otherwise anyone able to create a Repository or RestoreSession could read
// any Secret of the cluster through a Job.
func (set *Repositories) encryptionSecret(ctx context.Context, ns string, ref storagev1alpha1.ObjectReference) (string, error) {
	src := ref.Namespace
	if src == "" {
		src = ns
	}
	if src != ns {
		if err := set.allowedSecret(ctx, ns, src, ref.Name); err != nil {
			return "", err
		}
	}
	dir, err := set.secret(ctx, ns, src, ref.Name, []string{PasswordKey}, storagev1alpha1.ReasonEncryptionSecretMissing)
	if err != nil {
		return "", fmt.Errorf("encryption Secret: %w", err)
	}
	return dir, nil
}

// allowedSecret checks that Secret src/name names ns in its
// AnnotationAllowFrom annotation.
func (set *Repositories) allowedSecret(ctx context.Context, ns, src, name string) error {
	var meta metav1.PartialObjectMetadata
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := set.live.Get(ctx, client.ObjectKey{Namespace: src, Name: name}, &meta); err != nil {
		if apierrors.IsNotFound(err) {
			return NewProblem(storagev1alpha1.ReasonEncryptionSecretMissing, "encryption Secret %s/%s not found", src, name)
		}
		return fmt.Errorf("get Secret %s/%s: %w", src, name, err)
	}
	if !AllowsFrom(meta.Annotations[corev1alpha1.AnnotationAllowFrom], ns) {
		return NewProblem(corev1alpha1.ReasonNamespaceNotAllowed,
			"encryption Secret %s/%s does not allow namespace %s: annotate it %s=%s to share it",
			src, name, ns, corev1alpha1.AnnotationAllowFrom, ns)
	}
	return nil
}

// AllowsFrom reports whether a consent annotation's value (a comma
// separated list of namespaces, or "*" for all) names ns.
func AllowsFrom(value, ns string) bool {
	for _, v := range strings.Split(value, ",") {
		if v = strings.TrimSpace(v); v == "*" || v == ns {
			return true
		}
	}
	return false
}

// attachCopies mounts each copy, under the name CreateCopies gives it.
func (set *Repositories) attachCopies(job *batchv1.Job) {
	pod := &job.Spec.Template.Spec
	task := &pod.Containers[0]
	for i, cp := range set.copies {
		vol := fmt.Sprintf("shared-%d", i)
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: CopyName(job.Name, i), DefaultMode: ptr.To[int32](0o400)},
		}})
		task.VolumeMounts = append(task.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: SharedPath(cp.namespace, cp.name), ReadOnly: true})
	}
}

// createCopies creates the Secret copies the Job mounts, owned by the Job:
// the garbage collector deletes them with it.
func (set *Repositories) createCopies(ctx context.Context, c client.Client, job *batchv1.Job) error {
	for i, cp := range set.copies {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:   job.Namespace,
				Name:        CopyName(job.Name, i),
				Labels:      job.Labels,
				Annotations: map[string]string{corev1alpha1.AnnotationCopyOf: cp.namespace + "/" + cp.name},
			},
			Type:      corev1.SecretTypeOpaque,
			Data:      cp.data,
			Immutable: ptr.To(true),
		}
		if err := controllerutil.SetControllerReference(job, s, c.Scheme()); err != nil {
			return fmt.Errorf("own Secret %s: %w", s.Name, err)
		}
		if err := c.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Secret %s (copy of %s/%s): %w", s.Name, cp.namespace, cp.name, err)
		}
	}
	return nil
}
