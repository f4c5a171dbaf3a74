package servers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"k8s.io/apimachinery/pkg/util/wait"
)

// MinIOReadyTimeout bounds how long StartMinIO waits for the server to
// report ready; generous because the machines running tests are small.
const MinIOReadyTimeout = 60 * time.Second

// MinIO is a MinIO server started from ./bin/minio on loopback for one test.
// It holds no buckets until CreateBucket is called.
type MinIO struct {
	// Endpoint is the server URL, e.g. "http://127.0.0.1:39123".
	Endpoint string
	// AccessKey and SecretKey are the random root credentials.
	AccessKey string
	SecretKey string
	// Region is the region the server answers for.
	Region string
	// CAPEM is the CA that signs the server's certificate (StartMinIOTLS);
	// empty when the server speaks plain HTTP.
	CAPEM []byte

	certsDir   string
	httpClient *http.Client

	bin     string
	dataDir string
	address string
	log     *syncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMinIO starts a MinIO server with a fresh data directory and random
// root credentials, waits until /minio/health/ready answers, and registers
// a cleanup that kills it. The server log is printed when the test fails.
// It listens on loopback unless an option says otherwise.
func StartMinIO(t testing.TB, opts ...MinIOOption) *MinIO {
	t.Helper()
	SkipIfShort(t, "MinIO")
	m := newMinIO(t)
	for _, o := range opts {
		o(t, m)
	}
	m.Endpoint = "http://" + m.address
	m.run(t)
	return m
}

// MinIOOption changes how StartMinIO starts the server.
type MinIOOption func(testing.TB, *MinIO)

// ListenOn makes the server listen on host (an IP address), on a port free
// when it starts: the local cluster's node address, for instance, where
// pods reach it through a selector-less Service. Restart keeps the
// address.
func ListenOn(host string) MinIOOption {
	return func(t testing.TB, m *MinIO) { m.address = freeAddress(t, host) }
}

// newMinIO prepares a server with fresh credentials, data directory and
// address.
func newMinIO(t testing.TB) *MinIO {
	return &MinIO{
		AccessKey:  "keepsake-" + randomHex(t, 4),
		SecretKey:  randomHex(t, 20),
		Region:     "us-east-1",
		bin:        Bin(t, "minio"),
		dataDir:    t.TempDir(),
		address:    freeLoopbackAddress(t),
		log:        &syncBuffer{},
		httpClient: &http.Client{},
	}
}

// run starts the server, and registers the cleanup that kills it.
func (m *MinIO) run(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("minio log:\n%s", m.log.String())
		}
	})
	m.start(t)
}

// Restart starts the server again after Stop, on the same address and data
// directory, and waits until it is ready.
func (m *MinIO) Restart(t testing.TB) {
	t.Helper()
	m.Stop()
	m.start(t)
}

func (m *MinIO) start(t testing.TB) {
	t.Helper()
	args := []string{"server", "--quiet", "--address", m.address, "--console-address", freeLoopbackAddress(t)}
	if m.certsDir != "" {
		args = append(args, "--certs-dir", m.certsDir)
	}
	cmd := exec.Command(m.bin, append(args, m.dataDir)...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_REGION="+m.Region, "MINIO_BROWSER=off", "MINIO_UPDATE=off",
		"HOME="+filepath.Dir(m.dataDir))
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	if err := m.waitReady(done); err != nil {
		m.Stop()
		t.Fatalf("minio at %s: %v\nlog:\n%s", m.Endpoint, err, m.log.String())
	}
}

// waitReady polls the readiness endpoint until it answers 200, the process
// exits, or MinIOReadyTimeout passes.
func (m *MinIO) waitReady(exited <-chan struct{}) error {
	deadline := time.After(MinIOReadyTimeout)
	client := &http.Client{Timeout: 2 * time.Second, Transport: m.httpClient.Transport}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get(m.Endpoint + "/minio/health/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before it was ready")
		case <-deadline:
			return fmt.Errorf("not ready after %v", MinIOReadyTimeout)
		case <-tick.C:
		}
	}
}

// Stop kills the server (SIGKILL, by PID) and waits for it to exit, to
// simulate an outage. Calling it again, or after the test, is harmless.
func (m *MinIO) Stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// S3Client returns an S3 client with the root credentials (path style).
func (m *MinIO) S3Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       m.Region,
		BaseEndpoint: aws.String(m.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		HTTPClient:   m.httpClient,
	})
}

// CreateBucket creates a bucket, failing the test on error.
func (m *MinIO) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.S3Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// TemporaryCredentials returns STS credentials (access key, secret key,
// session token) limited by the given IAM policy document, e.g. one that
// allows only s3:ListBucket: a way to test access-denied paths without
// managing MinIO users.
func (m *MinIO) TemporaryCredentials(t testing.TB, policy string) (accessKey, secretKey, sessionToken string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := sts.New(sts.Options{
		Region:       m.Region,
		BaseEndpoint: aws.String(m.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		HTTPClient:   m.httpClient,
	})
	// MinIO reports ready before its IAM subsystem is: until then STS answers
	// "Server not initialized, please try again", so retry that one answer.
	var out *sts.AssumeRoleOutput
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var err error
		out, err = client.AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn:         aws.String("arn:xxx:xxx:xxx:xxxx"), // MinIO ignores it
			RoleSessionName: aws.String("keepsake-test"),
			Policy:          aws.String(policy),
			DurationSeconds: aws.Int32(3600),
		})
		if err != nil && strings.Contains(err.Error(), "Server not initialized") {
			return false, nil
		}
		return true, err
	})
	if err != nil {
		t.Fatalf("assume role on minio: %v", err)
	}
	c := out.Credentials
	return aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)
}

// freeLoopbackAddress returns 127.0.0.1:<port> with a port free right now.
func freeLoopbackAddress(t testing.TB) string {
	t.Helper()
	return freeAddress(t, "127.0.0.1")
}

// freeAddress returns host:<port> with a port free on host right now.
func freeAddress(t testing.TB, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("find a free port on %s: %v", host, err)
	}
	defer func() { _ = l.Close() }()
	return net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// syncBuffer is a bytes.Buffer safe for the writer goroutines of a process.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
