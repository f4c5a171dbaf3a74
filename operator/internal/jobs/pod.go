package jobs

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// podSecurityContext meets the "restricted" Pod Security Standard.
func podSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](NonRootUID),
		RunAsGroup:     ptr.To[int64](NonRootUID),
		FSGroup:        ptr.To[int64](NonRootUID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// restrictedContainer returns the "restricted" container settings, with
// custom's fields winning where set, except that nothing may re-enable
// privilege escalation or run as root: those stay restricted.
func restrictedContainer(custom *corev1.SecurityContext) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{}
	if custom != nil {
		sc = custom.DeepCopy()
	}
	sc.AllowPrivilegeEscalation = ptr.To(false)
	sc.Privileged = ptr.To(false)
	sc.RunAsNonRoot = ptr.To(true)
	if sc.ReadOnlyRootFilesystem == nil {
		sc.ReadOnlyRootFilesystem = ptr.To(true)
	}
	if sc.Capabilities == nil {
		sc.Capabilities = &corev1.Capabilities{}
	}
	sc.Capabilities.Drop = []corev1.Capability{"ALL"}
	if sc.SeccompProfile == nil {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	return sc
}

func volumes(secrets []string) []corev1.Volume {
	vs := []corev1.Volume{
		{Name: runtimeVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: scratchVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	for i, name := range secrets {
		vs = append(vs, corev1.Volume{
			Name: secretVolume(i),
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  name,
				DefaultMode: ptr.To[int32](0o400),
			}},
		})
	}
	return vs
}

func builtinMounts(secrets []string) []corev1.VolumeMount {
	ms := []corev1.VolumeMount{
		{Name: runtimeVolume, MountPath: RuntimeDir, ReadOnly: true},
		{Name: scratchVolume, MountPath: ScratchDir},
	}
	for i, name := range secrets {
		ms = append(ms, corev1.VolumeMount{Name: secretVolume(i), MountPath: SecretPath(name), ReadOnly: true})
	}
	return ms
}

// secretVolume names the volume of the i-th Secret: Secret names are DNS
// subdomains, too long or dotted for a volume name.
func secretVolume(i int) string { return fmt.Sprintf("secret-%d", i) }
