package v1alpha1

// OfflineRestoreStatus is what an offline restore recorded about its target,
// so that a restarted operator resumes where the last one stopped: it never
// reads the replica count again from a StatefulSet it already scaled to 0.
type OfflineRestoreStatus struct {
	// StatefulSet is the name of the target's StatefulSet.
	// +optional
	StatefulSet string `json:"statefulSet,omitempty"`
	// Replicas is the StatefulSet's replica count before the restore; the
	// restore gives it back, whatever the outcome.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// PausedOwner is true when the restore paused the target's owning
	// operator (a HyperbytedbCluster's spec.paused) and must unpause it.
	// An owner the user had paused is left paused.
	// +optional
	PausedOwner bool `json:"pausedOwner,omitempty"`
	// PVCs are the PersistentVolumeClaims restored, one Job each: every
	// volumeClaimTemplate of the StatefulSet for ordinals 0 to Replicas-1.
	// +kubebuilder:validation:MaxItems=256
	// +optional
	PVCs []string `json:"pvcs,omitempty"`
	// RestoredPVCs is how many of PVCs their Job restored.
	// +optional
	RestoredPVCs int32 `json:"restoredPVCs,omitempty"`
}

// Condition types and reasons of an offline restore.
const (
	// ConditionTargetStopped is True once no pod of the target's
	// StatefulSet runs; False with ScalingDown while the restore waits.
	ConditionTargetStopped = "TargetStopped"
	// ConditionTargetRestarted is True once the StatefulSet has its replica
	// count back and all of them are Ready.
	ConditionTargetRestarted = "TargetRestarted"

	ReasonScalingDown = "ScalingDown"
	ReasonStopped     = "TargetStopped"
	ReasonScalingUp   = "ScalingUp"
	ReasonRestarted   = "TargetRestarted"
	// ReasonStopTimeout: pods of the StatefulSet still ran after the stop
	// deadline; the restore scales back up without restoring.
	ReasonStopTimeout = "TargetStopTimeout"
	// ReasonStartTimeout: the StatefulSet's pods were not all Ready by the
	// start deadline after the restore.
	ReasonStartTimeout = "TargetStartTimeout"
	// ReasonTargetNotStoppable: the target has no StatefulSet with
	// volumeClaimTemplates, or one of its PVCs is missing.
	ReasonTargetNotStoppable = "TargetNotStoppable"
)
