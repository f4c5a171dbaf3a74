package backupsession

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
	"github.com/keepsake-dev/keepsake/operator/internal/jobs"
	"github.com/keepsake-dev/keepsake/repository/storage"
)

const (
	// SettingsDir holds the storage settings of each repository, one JSON
	// file per repository, from a ConfigMap: they hold no secret.
	SettingsDir    = "/keepsake/settings"
	settingsVolume = "keepsake-settings"
	// passwordKey is the key of the encryption Secret holding the password.
	passwordKey = "RESTIC_PASSWORD"
)

// repositorySet is what the Job needs to open the session's repositories.
type repositorySet struct {
	// specs are the --repository values, one per repository.
	specs []string
	// secrets are the Secrets to mount: encryption and storage credentials.
	secrets []string
	// settings are the storage files, by file name.
	settings map[string]string
	// volumes and mounts are the local storages' volumes.
	volumes []corev1.Volume
	mounts  []corev1.VolumeMount
}

func (s *repositorySet) flagValue() string { return strings.Join(s.specs, "\n") }

func (s *repositorySet) addSecret(name string) {
	for _, have := range s.secrets {
		if have == name {
			return
		}
	}
	s.secrets = append(s.secrets, name)
}

// repositories resolves each repository of the session to a --repository
// value, reading its Repository and BackupStorage.
func (r *Reconciler) repositories(ctx context.Context, p *pass) (*repositorySet, error) {
	set := &repositorySet{settings: map[string]string{}}
	for _, info := range p.session.Repositories {
		if err := r.addRepository(ctx, p, set, info.Name); err != nil {
			return nil, err
		}
	}
	return set, nil
}

func (r *Reconciler) addRepository(ctx context.Context, p *pass, set *repositorySet, name string) error {
	ns := p.bks.Namespace
	var repo storagev1alpha1.Repository
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &repo); err != nil {
		if apierrors.IsNotFound(err) {
			return newProblem(corev1alpha1.ReasonRepositoryNotFound, "Repository %s not found", name)
		}
		return fmt.Errorf("get Repository %s: %w", name, err)
	}
	ref := repo.Spec.StorageRef
	if ref.Namespace == "" {
		ref.Namespace = ns
	}
	var bs storagev1alpha1.BackupStorage
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &bs); err != nil {
		if apierrors.IsNotFound(err) {
			return newProblem(corev1alpha1.ReasonStorageNotFound, "BackupStorage %s/%s of Repository %s not found",
				ref.Namespace, ref.Name, name)
		}
		return fmt.Errorf("get BackupStorage %s: %w", ref.Name, err)
	}
	settings, credentials := r.settings(set, &bs)
	data, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("storage settings of %s: %w", name, err)
	}
	set.settings[name+".json"] = string(data)
	set.addSecret(repo.Spec.EncryptionSecret.Name)
	spec := []string{
		"name=" + name,
		"storage=" + path.Join(SettingsDir, name+".json"),
		"namespace=" + ns,
		"directory=" + repo.Spec.Path,
		"password-file=" + path.Join(jobs.SecretPath(repo.Spec.EncryptionSecret.Name), passwordKey),
	}
	if credentials != "" {
		spec = append(spec, "credentials="+credentials)
	}
	set.specs = append(set.specs, strings.Join(spec, ","))
	return nil
}

// settings turns a BackupStorage into the runtime's storage file, mounting
// its credentials Secret or its local volume. It returns the directory the
// credentials are mounted at, if any.
func (r *Reconciler) settings(set *repositorySet, bs *storagev1alpha1.BackupStorage) (storage.Settings, string) {
	var out storage.Settings
	st := bs.Spec.Storage
	out.Provider = string(st.Provider)
	var credentials string
	if s3 := st.S3; s3 != nil {
		out.S3.Endpoint, out.S3.Bucket, out.S3.Prefix, out.S3.Region = s3.Endpoint, s3.Bucket, s3.Prefix, s3.Region
		out.S3.ForcePathStyle, out.S3.InsecureTLS, out.S3.MaxConnections = s3.ForcePathStyle, s3.InsecureTLS, int(s3.MaxConnections)
		if s3.SecretName != "" {
			set.addSecret(s3.SecretName)
			credentials = jobs.SecretPath(s3.SecretName)
		}
	}
	if local := st.Local; local != nil {
		mountPath := local.MountPath
		if mountPath == "" {
			mountPath = "/keepsake/storage"
		}
		out.Local.Path = path.Join(mountPath, local.SubPath)
		vol := fmt.Sprintf("storage-%d", len(set.volumes))
		set.volumes = append(set.volumes, corev1.Volume{Name: vol, VolumeSource: local.VolumeSource})
		set.mounts = append(set.mounts, corev1.VolumeMount{Name: vol, MountPath: mountPath})
	}
	return out, credentials
}

// attachSettings creates the ConfigMap of storage files, owned by the
// session, and mounts it and the local storages into the task container.
func (r *Reconciler) attachSettings(ctx context.Context, p *pass, job *batchv1.Job, set *repositorySet) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: job.Namespace, Name: job.Name + "-settings", Labels: labels(p.bks)},
		Data:       set.settings,
	}
	if err := controllerutil.SetControllerReference(p.bks, cm, r.Client.Scheme()); err != nil {
		return fmt.Errorf("own ConfigMap %s: %w", cm.Name, err)
	}
	if err := r.Client.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ConfigMap %s: %w", cm.Name, err)
	}
	pod := &job.Spec.Template.Spec
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: settingsVolume, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}},
	}})
	pod.Volumes = append(pod.Volumes, set.volumes...)
	task := &pod.Containers[0]
	task.VolumeMounts = append(task.VolumeMounts, corev1.VolumeMount{Name: settingsVolume, MountPath: SettingsDir, ReadOnly: true})
	task.VolumeMounts = append(task.VolumeMounts, set.mounts...)
	return nil
}
