package jobs

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	storagev1alpha1 "github.com/keepsake-dev/keepsake/apis/storage/v1alpha1"
)

// defaultLocalMount is where a local storage is mounted when it says not.
const defaultLocalMount = "/keepsake/storage"

// localVolume is the volume of one local BackupStorage in a Job.
type localVolume struct {
	// storage is the BackupStorage's namespace/name.
	storage string
	// mountPath is where it is mounted, unique within the Job.
	mountPath string
	source    corev1.VolumeSource
}

// addLocal mounts the local storage of bs, once however many repositories
// use it, and returns its mount path. Two storages asking for the same
// path (the default, most often) cannot share it, or the API server
// refuses the Job: the second is mounted at the path with a suffix; the
// runtime finds each through its settings file, so the path is free.
func (set *Repositories) addLocal(bs *storagev1alpha1.BackupStorage) string {
	key := bs.Namespace + "/" + bs.Name
	if i := slices.IndexFunc(set.locals, func(l localVolume) bool { return l.storage == key }); i >= 0 {
		return set.locals[i].mountPath
	}
	want := bs.Spec.Storage.Local.MountPath
	if want == "" {
		want = defaultLocalMount
	}
	mountPath := want
	for n := 2; slices.ContainsFunc(set.locals, func(l localVolume) bool { return l.mountPath == mountPath }); n++ {
		mountPath = fmt.Sprintf("%s-%d", want, n)
	}
	set.locals = append(set.locals, localVolume{storage: key, mountPath: mountPath, source: bs.Spec.Storage.Local.VolumeSource})
	return mountPath
}

// attachLocals mounts the local storages into the Job's task container.
func (set *Repositories) attachLocals(job *batchv1.Job) {
	pod := &job.Spec.Template.Spec
	task := &pod.Containers[0]
	for i, l := range set.locals {
		vol := fmt.Sprintf("storage-%d", i)
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: vol, VolumeSource: l.source})
		task.VolumeMounts = append(task.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: l.mountPath})
	}
}
