package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StorageProvider is the kind of place backups are stored.
// +kubebuilder:validation:Enum=s3;local
type StorageProvider string

const (
	// ProviderS3 stores backups in an S3-compatible bucket.
	ProviderS3 StorageProvider = "s3"
	// ProviderLocal stores backups in a directory mounted into Jobs.
	ProviderLocal StorageProvider = "local"
)

// BackupStorageDeletionPolicy says what happens to the stored data when a
// BackupStorage is deleted. The words mean the same on every kind: Retain
// keeps the data, WipeOut deletes it.
// +kubebuilder:validation:Enum=Retain;WipeOut;Delete
type BackupStorageDeletionPolicy string

const (
	// BackupStorageRetain removes the BackupStorage object and keeps the data.
	BackupStorageRetain BackupStorageDeletionPolicy = "Retain"
	// BackupStorageWipeOut also deletes every repository stored under the prefix.
	BackupStorageWipeOut BackupStorageDeletionPolicy = "WipeOut"
	// BackupStorageDelete is the former name of BackupStorageRetain, still
	// accepted and meaning the same: the data is kept.
	// Write BackupStorageRetain in new manifests: on a Snapshot, Delete meant the
	// opposite.
	BackupStorageDelete BackupStorageDeletionPolicy = "Delete"
)

// BackupStorageSpec describes where backups are stored and who may use it.
type BackupStorageSpec struct {
	// Storage is the backend: an S3-compatible bucket or a local directory.
	Storage StorageBackend `json:"storage"`
	// UsagePolicy says which namespaces may store backups here. By default
	// only this BackupStorage's namespace.
	// +optional
	UsagePolicy *UsagePolicy `json:"usagePolicy,omitempty"`
	// Default marks this storage as the one used when a BackupConfiguration
	// names none.
	// +optional
	Default bool `json:"default,omitempty"`
	// DeletionPolicy is Retain (the default: keep the data when this object
	// is deleted) or WipeOut (delete every repository under the prefix too).
	// WipeOut with an empty prefix deletes nothing: Keepsake never empties
	// a whole bucket. Delete, the former name of Retain, is still accepted
	// and keeps the data.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy BackupStorageDeletionPolicy `json:"deletionPolicy,omitempty"`
	// Attach says how to use a prefix whose metadata.yaml names another
	// BackupStorage (another object, or the same name in another cluster).
	// Unset, such a storage is NotReady with reason PrefixInUse and the
	// prefix is left untouched. Shared uses it as it is, as a DR cluster
	// re-attaching a bucket does: metadata.yaml is never rewritten and
	// nothing is ever deleted through this storage (neither its WipeOut
	// nor the WipeOut of its Repositories deletes data).
	// +optional
	Attach AttachMode `json:"attach,omitempty"`
}

// AttachMode says how a BackupStorage uses a prefix another BackupStorage
// owns.
// +kubebuilder:validation:Enum=Shared
type AttachMode string

const (
	// AttachShared uses another owner's prefix without ever deleting from
	// it.
	AttachShared AttachMode = "Shared"
)

// StorageBackend is one storage location.
// +kubebuilder:validation:XValidation:rule="self.provider != 's3' || has(self.s3)",message="provider s3 requires the s3 section"
// +kubebuilder:validation:XValidation:rule="self.provider != 'local' || has(self.local)",message="provider local requires the local section"
// +kubebuilder:validation:XValidation:rule="!(has(self.s3) && has(self.local))",message="set only the section of the chosen provider"
type StorageBackend struct {
	// Provider is s3 or local.
	Provider StorageProvider `json:"provider"`
	// S3 configures an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...).
	// +optional
	S3 *S3Storage `json:"s3,omitempty"`
	// Local configures a directory mounted into backup and restore Jobs.
	// +optional
	Local *LocalStorage `json:"local,omitempty"`
}

// S3Storage is an S3-compatible bucket.
type S3Storage struct {
	// Endpoint is the URL of the S3 service, e.g. https://s3.amazonaws.com or
	// http://minio.storage.svc:9000.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^ /]+(/.*)?$')",message="endpoint must be an http:// or https:// URL with a host, e.g. https://s3.amazonaws.com or http://minio.storage.svc:9000"
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// Bucket is the bucket name; it must already exist.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9][a-z0-9.-]*[a-z0-9]$')",message="bucket must be an S3 bucket name: lower-case letters, digits, dots and dashes, starting and ending with a letter or digit"
	Bucket string `json:"bucket"`
	// Prefix is the directory inside the bucket under which Keepsake stores
	// everything (metadata.yaml and one folder per namespace).
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="prefix must not start with /"
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Region of the bucket; us-east-1 when empty.
	// +optional
	Region string `json:"region,omitempty"`
	// ForcePathStyle addresses the bucket as endpoint/bucket rather than
	// bucket.endpoint, as MinIO and most self-hosted services need.
	// +optional
	ForcePathStyle bool `json:"forcePathStyle,omitempty"`
	// InsecureTLS skips verification of the endpoint's TLS certificate. Use a
	// caBundle instead wherever possible.
	// +optional
	InsecureTLS bool `json:"insecureTLS,omitempty"`
	// CABundle is a PEM bundle that signs the endpoint's certificate.
	// +optional
	CABundle *CABundleSource `json:"caBundle,omitempty"`
	// SecretName is the Secret in this namespace holding the credentials:
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or access_key_id and
	// secret_access_key), optionally AWS_REGION and AWS_ENDPOINT_URL.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// MaxConnections caps concurrent connections restic opens to the bucket.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`
}

// CABundleSource points at a PEM bundle in a Secret or a ConfigMap.
// +kubebuilder:validation:XValidation:rule="has(self.secretKeyRef) != has(self.configMapKeyRef)",message="set exactly one of secretKeyRef and configMapKeyRef"
type CABundleSource struct {
	// SecretKeyRef selects a key of a Secret in this namespace.
	// +optional
	SecretKeyRef *corev1.SecretKeySelector `json:"secretKeyRef,omitempty"`
	// ConfigMapKeyRef selects a key of a ConfigMap in this namespace.
	// +optional
	ConfigMapKeyRef *corev1.ConfigMapKeySelector `json:"configMapKeyRef,omitempty"`
}

// LocalStorage is a directory mounted into backup and restore Jobs. Its
// volume is a PersistentVolumeClaim, or an NFS share when allowNFS says so:
// any other volume (hostPath above all) would let whoever creates a
// BackupStorage mount the node's disk, or other data, into Jobs.
// +kubebuilder:validation:XValidation:rule="(has(self.volumeSource.persistentVolumeClaim) != has(self.volumeSource.nfs)) && !(has(self.volumeSource.hostPath) || has(self.volumeSource.emptyDir) || has(self.volumeSource.gcePersistentDisk) || has(self.volumeSource.awsElasticBlockStore) || has(self.volumeSource.gitRepo) || has(self.volumeSource.secret) || has(self.volumeSource.iscsi) || has(self.volumeSource.glusterfs) || has(self.volumeSource.rbd) || has(self.volumeSource.flexVolume) || has(self.volumeSource.cinder) || has(self.volumeSource.cephfs) || has(self.volumeSource.flocker) || has(self.volumeSource.downwardAPI) || has(self.volumeSource.fc) || has(self.volumeSource.azureFile) || has(self.volumeSource.configMap) || has(self.volumeSource.vsphereVolume) || has(self.volumeSource.quobyte) || has(self.volumeSource.azureDisk) || has(self.volumeSource.photonPersistentDisk) || has(self.volumeSource.projected) || has(self.volumeSource.portworxVolume) || has(self.volumeSource.scaleIO) || has(self.volumeSource.storageos) || has(self.volumeSource.csi) || has(self.volumeSource.ephemeral) || has(self.volumeSource.image))",message="local.volumeSource must be exactly one persistentVolumeClaim or nfs volume: other volumes, such as hostPath, are not allowed for a backup storage"
// +kubebuilder:validation:XValidation:rule="!has(self.volumeSource.nfs) || (has(self.allowNFS) && self.allowNFS)",message="an nfs local.volumeSource needs allowNFS: true"
type LocalStorage struct {
	// MountPath is where the storage is mounted inside Jobs.
	// +kubebuilder:validation:Pattern=`^/.*`
	// +kubebuilder:default=/keepsake/storage
	// +optional
	MountPath string `json:"mountPath,omitempty"`
	// SubPath is the directory inside the volume that holds the backups.
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="subPath must be relative"
	// +optional
	SubPath string `json:"subPath,omitempty"`
	// VolumeSource is the volume holding the backups, e.g. a
	// persistentVolumeClaim or an nfs share.
	VolumeSource corev1.VolumeSource `json:"volumeSource"`
	// AllowNFS opts in to an nfs volumeSource: the share is mounted by the
	// node with the node's network identity, which not every cluster wants
	// a namespace to use.
	// +optional
	AllowNFS bool `json:"allowNFS,omitempty"`
}

// BackupStoragePhase summarises a BackupStorage's state.
// +kubebuilder:validation:Enum=Ready;NotReady
type BackupStoragePhase string

const (
	// BackupStorageReady means the storage was reached and written to.
	BackupStorageReady BackupStoragePhase = "Ready"
	// BackupStorageNotReady means it was not; the Ready condition says why.
	BackupStorageNotReady BackupStoragePhase = "NotReady"
)

// Reasons of a BackupStorage's Ready condition.
const (
	ReasonStorageAvailable   = "StorageAvailable"
	ReasonBucketNotFound     = "BucketNotFound"
	ReasonAccessDenied       = "AccessDenied"
	ReasonUnreachable        = "Unreachable"
	ReasonSecretMissing      = "SecretMissing"
	ReasonInvalidCredentials = "InvalidCredentials"
	ReasonCABundleMissing    = "CABundleMissing"
	ReasonMetadataWriteError = "MetadataWriteFailed"
	// ReasonPrefixInUse: the prefix's metadata.yaml names another
	// BackupStorage and spec.attach is not Shared.
	ReasonPrefixInUse = "PrefixInUse"
	// ReasonPrefixAttached: Ready on a prefix another BackupStorage owns,
	// which spec.attach Shared allowed.
	ReasonPrefixAttached = "PrefixAttached"
)

// BackupStorageStatus is the observed state of a BackupStorage.
type BackupStorageStatus struct {
	// Phase is Ready or NotReady; the Ready condition says why.
	// +optional
	Phase BackupStoragePhase `json:"phase,omitempty"`
	// TotalSize is the size of every repository stored here, e.g. 1.2 GiB.
	// +optional
	TotalSize string `json:"totalSize,omitempty"`
	// Repositories lists the repositories found in this storage.
	// +optional
	Repositories []StoredRepository `json:"repositories,omitempty"`
	// Conditions are the detailed state: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StoredRepository is a repository found in a BackupStorage.
type StoredRepository struct {
	// Name of the Repository object.
	Name string `json:"name"`
	// Namespace of the Repository object.
	Namespace string `json:"namespace"`
	// Path of the repository inside the storage prefix.
	Path string `json:"path"`
	// Size of the repository, e.g. 120 MiB.
	// +optional
	Size string `json:"size,omitempty"`
}

// BackupStorage is a place to store backups: an S3-compatible bucket or a
// local volume, checked by the operator before any backup uses it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bs,categories=keepsake
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.storage.provider`
// +kubebuilder:printcolumn:name="Bucket",type=string,JSONPath=`.spec.storage.s3.bucket`
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.default`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Prefix",type=string,JSONPath=`.spec.storage.s3.prefix`,priority=1
// +kubebuilder:printcolumn:name="Deletion",type=string,JSONPath=`.spec.deletionPolicy`,priority=1
// +kubebuilder:printcolumn:name="Attach",type=string,JSONPath=`.spec.attach`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupStorage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired storage.
	Spec BackupStorageSpec `json:"spec"`
	// Status is the storage as the operator last saw it.
	// +optional
	Status BackupStorageStatus `json:"status,omitempty"`
}

// BackupStorageList is a list of BackupStorage.
//
// +kubebuilder:object:root=true
type BackupStorageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupStorage `json:"items"`
}
