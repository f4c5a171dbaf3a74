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
	// Secrets are the Secrets to mount: encryption and storage credentials.
	Secrets []string
	// Settings are the storage files, by file name.
	Settings map[string]string
	// Volumes and Mounts are the local storages' volumes.
	Volumes []corev1.Volume
	Mounts  []corev1.VolumeMount
}

// FlagValue is the KEEPSAKE_REPOSITORY value: one spec per line.
func (s *Repositories) FlagValue() string { return strings.Join(s.Specs, "\n") }

// AddSecret mounts Secret name, once.
func (s *Repositories) AddSecret(name string) {
	for _, have := range s.Secrets {
		if have == name {
			return
		}
	}
	s.Secrets = append(s.Secrets, name)
}

// ResolveRepositories resolves each named Repository of namespace ns to a
// --repository value, reading it and its BackupStorage. encryption, when
// set, replaces the Repositories' encryption Secret (a RestoreSession's
// dataSource.encryptionSecret). A *Problem is the user's to fix.
func ResolveRepositories(ctx context.Context, c client.Reader, ns string, names []string, encryption string) (*Repositories, error) {
	set := &Repositories{Settings: map[string]string{}}
	for _, name := range names {
		if err := set.add(ctx, c, ns, name, encryption); err != nil {
			return nil, err
		}
	}
	return set, nil
}

func (set *Repositories) add(ctx context.Context, c client.Reader, ns, name, encryption string) error {
	var repo storagev1alpha1.Repository
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &repo); err != nil {
		if apierrors.IsNotFound(err) {
			return NewProblem(corev1alpha1.ReasonRepositoryNotFound, "Repository %s not found", name)
		}
		return fmt.Errorf("get Repository %s: %w", name, err)
	}
	ref := repo.Spec.StorageRef
	if ref.Namespace == "" {
		ref.Namespace = ns
	}
	var bs storagev1alpha1.BackupStorage
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &bs); err != nil {
		if apierrors.IsNotFound(err) {
			return NewProblem(corev1alpha1.ReasonStorageNotFound, "BackupStorage %s/%s of Repository %s not found",
				ref.Namespace, ref.Name, name)
		}
		return fmt.Errorf("get BackupStorage %s: %w", ref.Name, err)
	}
	settings, credentials := set.storage(&bs)
	data, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("storage settings of %s: %w", name, err)
	}
	set.Settings[name+".json"] = string(data)
	if encryption == "" {
		encryption = repo.Spec.EncryptionSecret.Name
	}
	set.AddSecret(encryption)
	spec := []string{
		"name=" + name,
		"storage=" + path.Join(SettingsDir, name+".json"),
		"namespace=" + ns,
		"directory=" + repo.Spec.Path,
		"password-file=" + path.Join(SecretPath(encryption), PasswordKey),
	}
	if credentials != "" {
		spec = append(spec, "credentials="+credentials)
	}
	set.Specs = append(set.Specs, strings.Join(spec, ","))
	return nil
}

// storage turns a BackupStorage into the runtime's storage file, mounting
// its credentials Secret or its local volume. It returns the directory the
// credentials are mounted at, if any.
func (set *Repositories) storage(bs *storagev1alpha1.BackupStorage) (storage.Settings, string) {
	var out storage.Settings
	st := bs.Spec.Storage
	out.Provider = string(st.Provider)
	var credentials string
	if s3 := st.S3; s3 != nil {
		out.S3.Endpoint, out.S3.Bucket, out.S3.Prefix, out.S3.Region = s3.Endpoint, s3.Bucket, s3.Prefix, s3.Region
		out.S3.ForcePathStyle, out.S3.InsecureTLS, out.S3.MaxConnections = s3.ForcePathStyle, s3.InsecureTLS, int(s3.MaxConnections)
		if s3.SecretName != "" {
			set.AddSecret(s3.SecretName)
			credentials = SecretPath(s3.SecretName)
		}
	}
	if local := st.Local; local != nil {
		mountPath := local.MountPath
		if mountPath == "" {
			mountPath = "/keepsake/storage"
		}
		out.Local.Path = path.Join(mountPath, local.SubPath)
		vol := fmt.Sprintf("storage-%d", len(set.Volumes))
		set.Volumes = append(set.Volumes, corev1.Volume{Name: vol, VolumeSource: local.VolumeSource})
		set.Mounts = append(set.Mounts, corev1.VolumeMount{Name: vol, MountPath: mountPath})
	}
	return out, credentials
}

// Attach creates the ConfigMap of storage files, owned by owner, and mounts
// it and the local storages into the Job's task container.
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
	pod.Volumes = append(pod.Volumes, set.Volumes...)
	task := &pod.Containers[0]
	task.VolumeMounts = append(task.VolumeMounts, corev1.VolumeMount{Name: settingsVolume, MountPath: SettingsDir, ReadOnly: true})
	task.VolumeMounts = append(task.VolumeMounts, set.Mounts...)
	return nil
}

// SettingsConfigMap names the ConfigMap of storage files of Job job.
func SettingsConfigMap(job string) string { return job + "-settings" }
