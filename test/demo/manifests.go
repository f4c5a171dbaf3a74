package demo

// The YAML the demo and the e2e scenarios apply, written as a user writes
// it. Templates take a Params.

// Params fill the manifests.
type Params struct {
	// Namespace holds the database, the Keepsake objects and the Jobs.
	Namespace string
	// Bucket and Prefix locate the backups in the test MinIO.
	Bucket, Prefix string
	// Endpoint is MinIO as pods reach it.
	Endpoint string
	// AccessKey and SecretKey are MinIO's credentials.
	AccessKey, SecretKey string
	// ResticPassword encrypts the repository.
	ResticPassword string
	// AdminUser and AdminPassword are the database's administrator.
	AdminUser, AdminPassword string
	// InfluxDBImage is the HyperbyteDB stand-in's image.
	InfluxDBImage string
	// Name names the object a template makes, when it makes a variable one.
	Name string
	// Schedule, AuthSecret, Directory and Retention shape a
	// BackupConfiguration.
	Schedule, AuthSecret, Directory, Retention string
	// Snapshot is what a RestoreSession restores: a name or "latest".
	Snapshot, Repository string
}

// Database is the HyperbyteDB-compatible database the demo backs up: an
// InfluxDB 1.x StatefulSet with a PersistentVolumeClaim, authentication on,
// and a Service named like the StatefulSet (the driver's default URL).
const Database = `
apiVersion: v1
kind: Service
metadata:
  name: metrics
  namespace: {{.Namespace}}
spec:
  selector: {app: metrics}
  ports:
    - {name: http, port: 8086, targetPort: 8086}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: metrics
  namespace: {{.Namespace}}
spec:
  serviceName: metrics
  replicas: 1
  selector:
    matchLabels: {app: metrics}
  template:
    metadata:
      labels: {app: metrics}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: influxdb
          image: {{.InfluxDBImage}}
          imagePullPolicy: Never
          env:
            - {name: INFLUXDB_HTTP_AUTH_ENABLED, value: "true"}
          ports:
            - {name: http, containerPort: 8086}
          readinessProbe:
            httpGet: {path: /ping, port: 8086}
            periodSeconds: 2
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: ["ALL"]}
          volumeMounts:
            - {name: data, mountPath: /var/lib/influxdb}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests: {storage: 1Gi}
`

// Storage is the Secrets, BackupStorage on MinIO and RetentionPolicy.
const Storage = `
apiVersion: v1
kind: Secret
metadata:
  name: minio-credentials
  namespace: {{.Namespace}}
stringData:
  AWS_ACCESS_KEY_ID: {{.AccessKey}}
  AWS_SECRET_ACCESS_KEY: {{.SecretKey}}
---
apiVersion: v1
kind: Secret
metadata:
  name: restic-password
  namespace: {{.Namespace}}
stringData:
  RESTIC_PASSWORD: {{.ResticPassword}}
---
apiVersion: v1
kind: Secret
metadata:
  name: metrics-auth
  namespace: {{.Namespace}}
stringData:
  username: {{.AdminUser}}
  password: {{.AdminPassword}}
---
apiVersion: storage.keepsake.dev/v1alpha1
kind: BackupStorage
metadata:
  name: minio
  namespace: {{.Namespace}}
spec:
  storage:
    provider: s3
    s3:
      endpoint: {{.Endpoint}}
      bucket: {{.Bucket}}
      prefix: {{.Prefix}}
      region: us-east-1
      forcePathStyle: true
      secretName: minio-credentials
  usagePolicy:
    allowedNamespaces:
      from: Same
---
apiVersion: storage.keepsake.dev/v1alpha1
kind: RetentionPolicy
metadata:
  name: keep-two
  namespace: {{.Namespace}}
spec:
  successfulSnapshots:
    last: 2
  failedSnapshots:
    last: 1
`

// BackupConfiguration backs the database up on Schedule into repository
// <Name>-repo, in Directory, authenticating with AuthSecret; Retention
// names a RetentionPolicy or is empty.
const BackupConfiguration = `
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupConfiguration
metadata:
  name: {{.Name}}
  namespace: {{.Namespace}}
spec:
  target:
    apiGroup: apps
    kind: StatefulSet
    name: metrics
  backends:
    - name: minio
      storageRef:
        name: minio
{{- if .Retention}}
      retentionPolicy:
        name: {{.Retention}}
{{- end}}
  sessions:
    - name: scheduled
      scheduler:
        schedule: "{{.Schedule}}"
      addon:
        name: hyperbytedb
        tasks:
          - name: logical-backup
            params:
              authSecret: {{.AuthSecret}}
      repositories:
        - name: {{.Name}}-repo
          backend: minio
          directory: {{.Directory}}
          encryptionSecret:
            name: restic-password
      backupTimeout: 10m
      sessionHistoryLimit: 5
`

// BackupSession asks for one more run of a BackupConfiguration's session,
// as `kubectl create` does.
const BackupSession = `
apiVersion: core.keepsake.dev/v1alpha1
kind: BackupSession
metadata:
  name: {{.Name}}
  namespace: {{.Namespace}}
spec:
  backupConfiguration: {{.Repository}}
  session: scheduled
`

// RestoreSession restores Snapshot of Repository into the database.
const RestoreSession = `
apiVersion: core.keepsake.dev/v1alpha1
kind: RestoreSession
metadata:
  name: {{.Name}}
  namespace: {{.Namespace}}
spec:
  target:
    apiGroup: apps
    kind: StatefulSet
    name: metrics
  dataSource:
    repository:
      name: {{.Repository}}
    snapshot: {{.Snapshot}}
  addon:
    name: hyperbytedb
    tasks:
      - name: logical-restore
        params:
          authSecret: metrics-auth
  restoreTimeout: 10m
`
