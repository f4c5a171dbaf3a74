package storage

// Settings is the storage file the operator writes into a task Job and
// `keepsake run` reads: a BackupStorage's storage spec with its references
// made files (credentials are a mounted Secret directory, passed beside it).
// Both sides use this one type so the file cannot drift; the runtime
// rejects unknown fields.
type Settings struct {
	Provider string        `json:"provider"`
	S3       S3Settings    `json:"s3"`
	Local    LocalSettings `json:"local"`
}

// S3Settings are the s3 part of Settings.
type S3Settings struct {
	Endpoint       string `json:"endpoint"`
	Bucket         string `json:"bucket"`
	Prefix         string `json:"prefix"`
	Region         string `json:"region"`
	ForcePathStyle bool   `json:"forcePathStyle"`
	InsecureTLS    bool   `json:"insecureTLS"`
	CABundleFile   string `json:"caBundleFile"`
	MaxConnections int    `json:"maxConnections"`
}

// LocalSettings are the local part of Settings.
type LocalSettings struct {
	Path string `json:"path"`
}
