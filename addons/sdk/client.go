package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Client is the host's handle on a running driver process. Close it when
// done; it is safe to Close a crashed driver.
type Client struct {
	name   string
	plugin *plugin.Client
	driver *grpcClient
	stderr *stderrTail
	exit   *exitSink
}

// Option configures Open.
type Option func(*openConfig)

type openConfig struct {
	logOutput io.Writer
	env       []string
}

// WithLogOutput sends the driver's log lines (and the host's own plugin
// log) to w instead of os.Stderr.
func WithLogOutput(w io.Writer) Option {
	return func(c *openConfig) { c.logOutput = w }
}

// WithEnv sets the driver's environment, replacing the host's (go-plugin
// still adds its own variables).
func WithEnv(env []string) Option {
	return func(c *openConfig) { c.env = env }
}

// crashWait bounds how long a failed call waits for the driver process to
// be reaped before calling it a crash rather than a broken connection.
const crashWait = 5 * time.Second

// Open starts the driver binary at path, performs the handshake and
// returns a connected Client. Cancelling ctx kills the driver.
func Open(ctx context.Context, path string, opts ...Option) (*Client, error) {
	cfg := openConfig{logOutput: os.Stderr}
	for _, o := range opts {
		o(&cfg)
	}
	c := &Client{name: filepath.Base(path), stderr: newStderrTail(64), exit: &exitSink{}}
	logger := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name: "driver", Output: cfg.logOutput, Level: hclog.Info,
	})
	logger.RegisterSink(c.exit)
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = cfg.env
	c.plugin = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: {pluginName: &driverPlugin{}}},
		Cmd:              cmd,
		SkipHostEnv:      cfg.env != nil,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		Stderr:           c.stderr,
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithInitialWindowSize(streamWindow),
			grpc.WithInitialConnWindowSize(connWindow),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)),
		},
	})
	if err := c.connect(); err != nil {
		c.plugin.Kill()
		return nil, fmt.Errorf("start driver %s: %w", path, err)
	}
	return c, nil
}

// connect performs the handshake. go-plugin's own errors say what went
// wrong (not a plugin, incompatible version, exited early); the driver's
// stderr is added when it printed something.
func (c *Client) connect() error {
	rpc, err := c.plugin.Client()
	if err == nil {
		var raw interface{}
		raw, err = rpc.Dispense(pluginName)
		if err == nil {
			c.driver = raw.(*grpcClient)
			return nil
		}
	}
	if out := c.stderr.crashLines(); out != "" {
		return fmt.Errorf("%w (driver stderr: %s)", err, out)
	}
	return err
}

// Pid returns the driver's process ID.
func (c *Client) Pid() int {
	if rc := c.plugin.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Close ends the driver process: gracefully, then by force after a few
// seconds.
func (c *Client) Close() {
	c.plugin.Kill()
}

// Info asks the driver to describe itself.
func (c *Client) Info(ctx context.Context) (Info, error) {
	info, err := c.driver.info(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("driver %s: info: %w", c.name, c.explain(ctx, err))
	}
	return info, nil
}

// Backup runs the driver's Backup and copies the dump into w, returning the
// number of bytes copied and the counts the driver reported. It returns
// nil only if the dump is complete: on any error, treat what reached w as
// garbage. A failure of w itself is returned as is (wrapped), so callers
// can tell it from a driver failure.
func (c *Client) Backup(ctx context.Context, req *BackupRequest, w io.Writer) (BackupResult, error) {
	res, err := c.driver.backup(ctx, req, w)
	if err != nil {
		return res, fmt.Errorf("driver %s: backup: %w", c.name, c.explain(ctx, err))
	}
	return res, nil
}

// ErrNoVerify is what Verify returns, wrapped, for a driver that cannot
// verify a dump: one built without Verify, or before it existed.
var ErrNoVerify = errors.New("the driver cannot verify a dump")

// Verify streams r, a dump made by the driver's Backup, into the driver's
// Verify and returns what the driver counted in it. A driver that is no
// Verifier fails with ErrNoVerify; a failure of r is returned as is, as
// for Restore.
func (c *Client) Verify(ctx context.Context, req *VerifyRequest, r io.Reader) (VerifyResult, error) {
	res, err := c.driver.verify(ctx, req, r)
	if status.Code(err) == codes.Unimplemented {
		return res, fmt.Errorf("driver %s: verify: %w", c.name, ErrNoVerify)
	}
	if err != nil {
		return res, fmt.Errorf("driver %s: verify: %w", c.name, c.explain(ctx, err))
	}
	return res, nil
}

// Restore streams r into the driver's Restore and returns once the driver
// has loaded all of it: the bytes sent and what the driver says it
// restored. An error reading r aborts the driver's Restore; on error Bytes
// is how far the stream got.
func (c *Client) Restore(ctx context.Context, req *RestoreRequest, r io.Reader) (RestoreResult, error) {
	res, err := c.driver.restore(ctx, req, r)
	if err != nil {
		return res, fmt.Errorf("driver %s: restore: %w", c.name, c.explain(ctx, err))
	}
	return res, nil
}

// explain turns a raw call error into what happened: the driver's own
// error message, a crash of the driver process, or a host-side failure.
func (c *Client) explain(ctx context.Context, err error) error {
	var sink *sinkError
	var source *sourceError
	if errors.As(err, &sink) || errors.As(err, &source) || errors.Is(err, errProtocol) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("cancelled: %w", context.Cause(ctx))
	}
	st, isStatus := status.FromError(err)
	if isStatus && st.Code() != codes.Unavailable {
		return errors.New(st.Message())
	}
	if c.waitExited(crashWait) {
		return &CrashError{Driver: c.name, Exit: c.exit.status(), Output: c.stderr.crashLines()}
	}
	if isStatus {
		return fmt.Errorf("%s (%s)", st.Message(), st.Code())
	}
	return err
}

// waitExited reports whether the driver process has exited, waiting up to
// limit for the reaper: a connection drops a moment before the exit is
// recorded.
func (c *Client) waitExited(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for !c.plugin.Exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// CrashError reports a driver process that died during a call.
type CrashError struct {
	// Driver is the driver binary's name.
	Driver string
	// Exit is how the process ended, e.g. "exit status 2" or "signal:
	// killed"; empty if unknown.
	Exit string
	// Output is the part of the driver's stderr that explains the crash,
	// e.g. the panic message.
	Output string
}

// Error implements error.
func (e *CrashError) Error() string {
	msg := "driver process " + e.Driver + " crashed"
	if e.Exit != "" {
		msg += " (" + e.Exit + ")"
	}
	if e.Output != "" {
		msg += ": " + e.Output
	}
	return msg
}
