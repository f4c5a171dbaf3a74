package servers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestFaultProxyClientWithRetriesGetsEveryObject: through the proxy, with
// one request in five failed (503, reset or delayed, never more than two
// in a row), an S3 client that retries writes and reads back every object
// byte for byte, and the proxy reports faults of each kind. The client
// signs for the proxy's address: MinIO accepts the signatures only because
// the proxy keeps the Host header. Switched off, the proxy injects nothing
// more and a client that never retries succeeds every time.
func TestFaultProxyClientWithRetriesGetsEveryObject(t *testing.T) {
	m := StartMinIO(t)
	m.CreateBucket(t, "faults")
	// A short delay keeps the test quick; the e2e uses 10 s.
	p := StartFaultProxy(t, "127.0.0.1", m.Endpoint, FaultProxyConfig{Share: 0.2, MaxInARow: 2, Delay: 300 * time.Millisecond, Seed: 12})
	client := s3.New(s3.Options{
		Region: m.Region, BaseEndpoint: aws.String(p.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		// MaxInARow+1 attempts always get through one client's requests.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 4; o.MaxBackoff = 100 * time.Millisecond }),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	objects := randomObjects(40)
	for key, data := range objects {
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("faults"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("put %s through the proxy: %v", key, err)
		}
	}
	for key, data := range objects {
		if got := getObject(t, ctx, client, key); !bytes.Equal(got, data) {
			t.Errorf("object %s read through the proxy: %d bytes, want the %d written", key, len(got), len(data))
		}
	}
	injected := p.Injected()
	for _, f := range Faults {
		if injected[f] == 0 {
			t.Errorf("the proxy injected no %s fault (injected %v, forwarded %d)", f, injected, p.Forwarded())
		}
	}
	t.Logf("injected %v; forwarded %d requests", injected, p.Forwarded())

	p.SetFaults(false)
	noRetry := func(o *s3.Options) { o.RetryMaxAttempts = 1 }
	for key := range objects {
		if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("faults"), Key: aws.String(key)}, noRetry); err != nil {
			t.Errorf("head %s with faults off and no retry: %v", key, err)
		}
	}
	if after := p.Injected(); fmt.Sprint(after) != fmt.Sprint(injected) {
		t.Errorf("faults off, the proxy still injected: %v, was %v", after, injected)
	}
}

// randomObjects makes n objects of pseudo-random bytes, from empty to
// 1 MiB (a body the client sends in several writes).
func randomObjects(n int) map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := map[string][]byte{}
	for i := range n {
		data := make([]byte, rng.IntN(1<<20))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		out[fmt.Sprintf("data/%03d", i)] = data
	}
	return out
}

func getObject(t *testing.T, ctx context.Context, client *s3.Client, key string) []byte {
	t.Helper()
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("faults"), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s through the proxy: %v", key, err)
	}
	defer func() { _ = out.Body.Close() }()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s through the proxy: %v", key, err)
	}
	return data
}
