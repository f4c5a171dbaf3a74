package storage

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Store is a Store on an S3 bucket and prefix.
type s3Store struct {
	client *s3.Client
	bucket string
	prefix string
}

// s3MaxAttempts bounds the SDK's retries so that an unreachable endpoint
// fails within seconds rather than minutes (callers bound it further by ctx).
const s3MaxAttempts = 2

func newS3Store(cfg Config) (*s3Store, error) {
	httpClient, err := newHTTPClient(cfg.S3)
	if err != nil {
		return nil, fmt.Errorf("open s3 storage %s: %w", cfg.S3.Bucket, err)
	}
	creds := cfg.Credentials
	opts := s3.Options{
		Region:       cfg.region(),
		UsePathStyle: cfg.S3.ForcePathStyle,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)),
		HTTPClient:       httpClient,
		RetryMaxAttempts: s3MaxAttempts,
		// Many S3-compatible servers reject the SDK's default CRC checksums.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if e := cfg.endpoint(); e != "" {
		opts.BaseEndpoint = aws.String(e)
	}
	return &s3Store{client: s3.New(opts), bucket: cfg.S3.Bucket, prefix: cfg.prefix()}, nil
}

// newHTTPClient builds the transport: extra CAs, optional insecure TLS and
// the connection limit.
func newHTTPClient(c S3Config) (*awshttp.BuildableClient, error) {
	pool, err := certPool(c)
	if err != nil {
		return nil, err
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = pool
		tr.TLSClientConfig.InsecureSkipVerify = c.InsecureTLS //nolint:gosec // only when the user asks
		if c.MaxConnections > 0 {
			tr.MaxConnsPerHost = c.MaxConnections
		}
	}), nil
}

// certPool returns the system pool plus the configured CA bundle, or nil
// (system pool) when there is no bundle.
func certPool(c S3Config) (*x509.CertPool, error) {
	pem := c.CABundle
	if len(pem) == 0 && c.CABundleFile != "" {
		var err error
		if pem, err = os.ReadFile(c.CABundleFile); err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
	}
	if len(pem) == 0 {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("CA bundle holds no PEM certificate")
	}
	return pool, nil
}

func (s *s3Store) key(k string) (string, error) {
	return cleanKey(s.prefix, k)
}

// Check heads the bucket, then writes, reads and deletes a probe object.
func (s *s3Store) Check(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		return s.explainHeadBucket(ctx, err)
	}
	probe, data := probeKey(), []byte("keepsake storage probe\n")
	if err := s.Put(ctx, probe, data); err != nil {
		return fmt.Errorf("check bucket %s: %w", s.bucket, err)
	}
	got, err := s.Get(ctx, probe)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", s.bucket, err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("check bucket %s: probe object read back differs", s.bucket)
	}
	if err := s.Delete(ctx, probe); err != nil {
		return fmt.Errorf("check bucket %s: %w", s.bucket, err)
	}
	return nil
}

// explainHeadBucket turns a failed HeadBucket into a classified error. A
// HEAD response has no body, so a bare 403 cannot tell wrong credentials
// from a missing permission: a ListObjectsV2 call, whose error has a code,
// decides.
func (s *s3Store) explainHeadBucket(ctx context.Context, headErr error) error {
	op := "check bucket " + s.bucket
	if classifyS3(headErr, ErrBucketNotFound) != ErrAccessDenied {
		return wrapS3(op, headErr, ErrBucketNotFound)
	}
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), MaxKeys: aws.Int32(1), Prefix: aws.String(s.prefix),
	})
	if err == nil {
		return wrapS3(op, headErr, ErrBucketNotFound)
	}
	return wrapS3(op, err, ErrBucketNotFound)
}

// Get reads a small object.
func (s *s3Store) Get(ctx context.Context, key string) ([]byte, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return nil, wrapS3("get s3 object "+k, err, ErrNotFound)
	}
	defer func() { _ = out.Body.Close() }()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, wrapS3("read s3 object "+k, err, ErrNotFound)
	}
	return data, nil
}

// Put writes a small object.
func (s *s3Store) Put(ctx context.Context, key string, data []byte) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(k),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return wrapS3("put s3 object "+k, err, ErrBucketNotFound)
	}
	return nil
}

// Delete removes an object; S3 does not fail on a missing key.
func (s *s3Store) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return wrapS3("delete s3 object "+k, err, ErrBucketNotFound)
	}
	return nil
}

// ListDir lists one level with a "/" delimiter, page by page.
func (s *s3Store) ListDir(ctx context.Context, dir string) (files, dirs []string, err error) {
	k, err := s.key(dir)
	if err != nil {
		return nil, nil, err
	}
	if k != "" {
		k += "/"
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(k), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, wrapS3("list s3 prefix "+k, err, ErrBucketNotFound)
		}
		for _, o := range page.Contents {
			files = append(files, strings.TrimPrefix(aws.ToString(o.Key), k))
		}
		for _, cp := range page.CommonPrefixes {
			dirs = append(dirs, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), k), "/"))
		}
	}
	return files, dirs, nil
}

// DeleteAll lists the keys under dir page by page (at most 1000 a page)
// and deletes each page with one DeleteObjects call (at most 1000 keys).
func (s *s3Store) DeleteAll(ctx context.Context, dir string) (int, error) {
	k, err := s.key(dir)
	if err != nil {
		return 0, err
	}
	if k == "" {
		return 0, fmt.Errorf("delete everything in bucket %s: %w", s.bucket, ErrWholeStorage)
	}
	k += "/"
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(k), MaxKeys: aws.Int32(1000),
	})
	deleted := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return deleted, wrapS3("list s3 prefix "+k, err, ErrBucketNotFound)
		}
		n, err := s.deleteObjects(ctx, page.Contents)
		deleted += n
		if err != nil {
			return deleted, fmt.Errorf("delete s3 prefix %s: %w", k, err)
		}
	}
	return deleted, nil
}

// deleteObjects deletes up to 1000 listed objects in one request and
// returns how many went. Keys S3 reports as not deleted make the error.
func (s *s3Store) deleteObjects(ctx context.Context, objects []types.Object) (int, error) {
	if len(objects) == 0 {
		return 0, nil
	}
	ids := make([]types.ObjectIdentifier, len(objects))
	for i, o := range objects {
		ids[i] = types.ObjectIdentifier{Key: o.Key}
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return 0, wrapS3("delete s3 objects", err, ErrBucketNotFound)
	}
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		err := fmt.Errorf("%d of %d objects not deleted, first %s: %s: %s", len(out.Errors), len(ids),
			aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		if kind := s3ErrorCodes[aws.ToString(e.Code)]; kind != nil {
			err = fmt.Errorf("%w: %w", kind, err)
		}
		return len(ids) - len(out.Errors), err
	}
	return len(ids), nil
}
