package servers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

func TestMinIOStartStopRestart(t *testing.T) {
	m := StartMinIO(t)
	m.CreateBucket(t, "probe")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	put := &s3.PutObjectInput{Bucket: aws.String("probe"), Key: aws.String("k"), Body: strings.NewReader("v")}
	if _, err := m.S3Client().PutObject(ctx, put); err != nil {
		t.Fatalf("put object: %v", err)
	}

	m.Stop()
	noRetry := func(o *s3.Options) { o.RetryMaxAttempts = 1 }
	if _, err := m.S3Client().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("probe")}, noRetry); err == nil {
		t.Fatal("head bucket succeeded on a stopped server")
	}

	m.Restart(t)
	if _, err := m.S3Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("probe"), Key: aws.String("k")}); err != nil {
		t.Fatalf("object lost across restart: %v", err)
	}
}

func TestMinIOTemporaryCredentialsAreLimited(t *testing.T) {
	m := StartMinIO(t)
	m.CreateBucket(t, "limited")
	ak, sk, token := m.TemporaryCredentials(t, `{"Version":"2012-10-17","Statement":[`+
		`{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::limited"]}]}`)
	client := s3.New(s3.Options{
		Region: m.Region, BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, token),
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("limited")}); err != nil {
		t.Fatalf("list with allowed action: %v", err)
	}
	put := &s3.PutObjectInput{Bucket: aws.String("limited"), Key: aws.String("k"), Body: strings.NewReader("v")}
	_, err := client.PutObject(ctx, put)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Fatalf("put with a list-only policy: got %v, want AccessDenied", err)
	}
}

// TestMinIOListenOn: the server listens on the address asked for (another
// loopback address here; the node address in the e2e), and Restart keeps
// it.
func TestMinIOListenOn(t *testing.T) {
	m := StartMinIO(t, ListenOn("127.0.0.2"))
	if !strings.HasPrefix(m.Endpoint, "http://127.0.0.2:") {
		t.Fatalf("endpoint %s, want one on 127.0.0.2", m.Endpoint)
	}
	m.CreateBucket(t, "elsewhere")
	before := m.Endpoint
	m.Restart(t)
	if m.Endpoint != before {
		t.Errorf("endpoint after Restart %s, want %s", m.Endpoint, before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := m.S3Client().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("elsewhere")}); err != nil {
		t.Fatalf("bucket after Restart: %v", err)
	}
}
