package jobs

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// TargetDir is where a Job mounts a PVC of the target: the one it writes
// in an offline restore, the one it reads in a backup task that mounts the
// target's volume. The Function gets it as ${targetDir}, the driver as
// KEEPSAKE_TARGET_DIR.
const TargetDir = "/keepsake/target"

// targetVolume is the name of the volume of the target's PVC.
const targetVolume = "target"

// nodeNameField is the node field a scheduling term can match: a node's
// name, which its kubernetes.io/hostname label need not equal (cloud
// providers name nodes after the instance).
const nodeNameField = "metadata.name"

// MountTargetPVC mounts PVC pvc at TargetDir in every container of the
// Job's pod (read-only when readOnly) and tells the driver where and which
// (KEEPSAKE_TARGET_DIR, KEEPSAKE_TARGET_PVC): the PVC an offline restore
// writes, or the one a backup task that mounts the target's volume reads.
func MountTargetPVC(job *batchv1.Job, pvc string, readOnly bool) {
	pod := &job.Spec.Template.Spec
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: targetVolume, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc, ReadOnly: readOnly},
	}})
	for i := range pod.Containers {
		c := &pod.Containers[i]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: targetVolume, MountPath: TargetDir, ReadOnly: readOnly})
		c.Env = append(c.Env, corev1.EnvVar{Name: "KEEPSAKE_TARGET_DIR", Value: TargetDir}, corev1.EnvVar{Name: "KEEPSAKE_TARGET_PVC", Value: pvc})
	}
}

// MountTargetVolume mounts PVC pvc read-only (MountTargetPVC) and keeps
// the pod on node, where the pod that uses the volume runs: a
// ReadWriteOnce volume attaches to one node at a time. The pod is still
// scheduled (required node affinity on the node's name, as the DaemonSet
// controller does), so taints and resources count, unlike with
// spec.nodeName.
func MountTargetVolume(job *batchv1.Job, pvc, node string) {
	MountTargetPVC(job, pvc, true)
	job.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: nodeNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}},
	}}
}
