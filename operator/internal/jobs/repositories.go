package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/keepsake-dev/keepsake/apis/core/v1alpha1"
	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
	"github.com/keepsake-dev/keepsake/operator/internal/storageref"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

const (
	// SettingsDir holds the storage settings of each repository, one JSON
	// file per repository, from a ConfigMap: they hold no secret.
	SettingsDir    = "/keepsake/settings"
	settingsVolume = "keepsake-settings"
	// PasswordKey is the key of the encryption Secret holding the password.
	PasswordKey = "RESTIC_PASSWORD"
)

// Repositories is what a Job needs to open its repositories: the runtime's
// --repository values, the Secrets and storage files they point at, and
// the volumes of local storages.
type Repositories struct {
	// Specs are the --repository values, one per repository.
	Specs []string
	// Secrets are the Secrets of the Job's own namespace to mount:
	// encryption and storage credentials.
	Secrets []string
	// Settings are the storage files, by file name.
	Settings map[string]string

	// copies are the Secrets of other namespaces the Job needs; each is
	// copied into the Job's namespace, owned by the Job (see Create).
	copies []*secretCopy
	// locals are the local storages' volumes.
	locals []localVolume

	// live reads Secrets and ConfigMaps past the cache, and namespaces.
	live client.Reader
}

// FlagValue is the KEEPSAKE_REPOSITORY value: one spec per line.
func (s *Repositories) FlagValue() string { return strings.Join(s.Specs, "\n") }

// AddSecret mounts Secret name of the Job's namespace, once.
func (s *Repositories) AddSecret(name string) {
	for _, have := range s.Secrets {
		if have == name {
			return
		}
	}
	s.Secrets = append(s.Secrets, name)
}

// ResolveRepositories resolves each named Repository of namespace ns to a
// --repository value, reading it and its BackupStorage from c and the
// Secrets, ConfigMaps and namespaces they need from live (past the cache:
// the operator watches none of them). encryption, when set, replaces the
// Repositories' encryption Secret (a RestoreSession's
// dataSource.encryptionSecret). The BackupStorage's usage policy must allow
// ns. A *Problem is the user's to fix.
func ResolveRepositories(ctx context.Context, c, live client.Reader, ns string, names []string, encryption *storagev1alpha1.ObjectReference) (*Repositories, error) {
	set := &Repositories{Settings: map[string]string{}, live: live}
	for _, name := range names {
		if err := set.add(ctx, c, ns, name, encryption); err != nil {
			return nil, err
		}
	}
	return set, nil
}

func (set *Repositories) add(ctx context.Context, c client.Reader, ns, name string, encryption *storagev1alpha1.ObjectReference) error {
	var repo storagev1alpha1.Repository
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &repo); err != nil {
		if apierrors.IsNotFound(err) {
			return NewProblem(corev1alpha1.ReasonRepositoryNotFound, "Repository %s not found", name)
		}
		return fmt.Errorf("get Repository %s: %w", name, err)
	}
	bs, err := set.backupStorage(ctx, c, &repo)
	if err != nil {
		return err
	}
	settings, credentials, err := set.storage(ctx, name, bs, ns)
	if err != nil {
		return err
	}
	data, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("storage settings of %s: %w", name, err)
	}
	set.Settings[name+".json"] = string(data)
	if encryption == nil {
		encryption = &repo.Spec.EncryptionSecret
	}
	passwordDir, err := set.encryptionSecret(ctx, ns, *encryption)
	if err != nil {
		return fmt.Errorf("repository %s: %w", name, err)
	}
	spec := []string{
		"name=" + name,
		"storage=" + path.Join(SettingsDir, name+".json"),
		"namespace=" + ns,
		"directory=" + repo.Spec.Path,
		"password-file=" + path.Join(passwordDir, PasswordKey),
	}
	if credentials != "" {
		spec = append(spec, "credentials="+credentials)
	}
	set.Specs = append(set.Specs, strings.Join(spec, ","))
	return nil
}

// backupStorage reads the Repository's BackupStorage and checks that its
// usage policy lets the Repository's namespace use it: on every path
// (backup, restore, retention, forget), not only when a
// BackupConfiguration is validated.
func (set *Repositories) backupStorage(ctx context.Context, c client.Reader, repo *storagev1alpha1.Repository) (*storagev1alpha1.BackupStorage, error) {
	ref := repo.Spec.StorageRef
	if ref.Namespace == "" {
		ref.Namespace = repo.Namespace
	}
	var bs storagev1alpha1.BackupStorage
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &bs); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, NewProblem(corev1alpha1.ReasonStorageNotFound, "BackupStorage %s/%s of Repository %s not found",
				ref.Namespace, ref.Name, repo.Name)
		}
		return nil, fmt.Errorf("get BackupStorage %s: %w", ref.Name, err)
	}
	ok, err := storageref.Allows(ctx, set.live, bs.Spec.UsagePolicy, bs.Namespace, repo.Namespace)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, NewProblem(corev1alpha1.ReasonStorageNotAllowed,
			"the usage policy of BackupStorage %s/%s does not allow namespace %s (Repository %s)",
			bs.Namespace, bs.Name, repo.Namespace, repo.Name)
	}
	return &bs, nil
}

// storage turns a BackupStorage into the runtime's storage file for
// repository repo of a Job in namespace ns, mounting its credentials
// Secret, CA bundle or local volume. It returns the directory the
// credentials are mounted at, if any.
func (set *Repositories) storage(ctx context.Context, repo string, bs *storagev1alpha1.BackupStorage, ns string) (storage.Settings, string, error) {
	var out storage.Settings
	st := bs.Spec.Storage
	out.Provider = string(st.Provider)
	var credentials string
	if s3 := st.S3; s3 != nil {
		out.S3.Endpoint, out.S3.Bucket, out.S3.Prefix, out.S3.Region = s3.Endpoint, s3.Bucket, s3.Prefix, s3.Region
		out.S3.ForcePathStyle, out.S3.InsecureTLS, out.S3.MaxConnections = s3.ForcePathStyle, s3.InsecureTLS, int(s3.MaxConnections)
		if s3.SecretName != "" {
			dir, err := set.secret(ctx, ns, bs.Namespace, s3.SecretName, nil, storagev1alpha1.ReasonSecretMissing)
			if err != nil {
				return out, "", fmt.Errorf("credentials of BackupStorage %s/%s: %w", bs.Namespace, bs.Name, err)
			}
			credentials = dir
		}
		if s3.CABundle != nil {
			file, err := set.caBundle(ctx, repo, ns, bs)
			if err != nil {
				return out, "", err
			}
			out.S3.CABundleFile = file
		}
	}
	if local := st.Local; local != nil {
		out.Local.Path = path.Join(set.addLocal(bs), local.SubPath)
	}
	return out, credentials, nil
}

// caBundle makes the BackupStorage's CA bundle a file in the Job and
// returns its path: a Secret's key is mounted (copied when the Secret lives
// in another namespace), a ConfigMap's key goes into the settings
// ConfigMap, as certificates are public.
func (set *Repositories) caBundle(ctx context.Context, repo, ns string, bs *storagev1alpha1.BackupStorage) (string, error) {
	src := bs.Spec.Storage.S3.CABundle
	if ref := src.SecretKeyRef; ref != nil {
		dir, err := set.secret(ctx, ns, bs.Namespace, ref.Name, []string{ref.Key}, storagev1alpha1.ReasonCABundleMissing)
		if err != nil {
			return "", fmt.Errorf("CA bundle of BackupStorage %s/%s: %w", bs.Namespace, bs.Name, err)
		}
		return path.Join(dir, ref.Key), nil
	}
	pem, where, err := storageref.CABundle(ctx, set.live, bs.Namespace, src)
	if apierrors.IsNotFound(err) || (err == nil && len(pem) == 0) {
		return "", NewProblem(storagev1alpha1.ReasonCABundleMissing, "CA bundle of BackupStorage %s/%s: %s is missing or empty",
			bs.Namespace, bs.Name, where)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", where, err)
	}
	set.Settings[repo+".ca.pem"] = string(pem)
	return path.Join(SettingsDir, repo+".ca.pem"), nil
}

// Attach creates the ConfigMap of storage files, owned by owner, and mounts
// it, the copied Secrets and the local storages into the Job's task
// container. Create then makes the copies.
func (set *Repositories) Attach(ctx context.Context, c client.Client, owner client.Object, job *batchv1.Job) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, Name: SettingsConfigMap(job.Name), Labels: job.Labels},
		Data:       set.Settings,
	}
	if err := controllerutil.SetControllerReference(owner, cm, c.Scheme()); err != nil {
		return fmt.Errorf("own ConfigMap %s: %w", cm.Name, err)
	}
	if err := c.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ConfigMap %s: %w", cm.Name, err)
	}
	pod := &job.Spec.Template.Spec
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: settingsVolume, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}},
	}})
	task := &pod.Containers[0]
	task.VolumeMounts = append(task.VolumeMounts, corev1.VolumeMount{Name: settingsVolume, MountPath: SettingsDir, ReadOnly: true})
	set.attachCopies(job)
	set.attachLocals(job)
	return nil
}

// SettingsConfigMap names the ConfigMap of storage files of Job job.
func SettingsConfigMap(job string) string { return job + "-settings" }
