package sdk

import (
	"context"
	"log/slog"
	"os"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	driverpb "github.com/keepsake-dev/keepsake/addons/sdk/proto"
)

// ProtocolVersion is the version of the host-driver protocol. Hosts and
// drivers built against different versions refuse each other at start-up
// with an error naming both versions.
const ProtocolVersion = 1

// pluginName is the name of the one plugin a driver binary serves.
const pluginName = "driver"

// handshake is shared by host and driver. The cookie only stops the binary
// from being run by hand as if it were a normal program; it is not security.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "KEEPSAKE_DRIVER_PLUGIN",
	MagicCookieValue: "3b1f0c2e-keepsake-driver-7d9a",
}

// Window sizes for the gRPC connection. The defaults (64 KiB, grown by BDP
// estimation) cap a local stream well below what restic consumes; four
// chunks in flight keep the stream full while bounding what the receiver
// holds unread: when restic is the slower side (the usual case), the
// window stays full, and it is the largest part of the host's heap.
const (
	streamWindow = 4 * chunkSize
	connWindow   = 2 * streamWindow
)

// Serve runs driver as a plugin until the host ends it. Call it from main;
// it does not return while the host is connected.
func Serve(driver Driver) {
	serve(driver, ProtocolVersion)
}

// serve is Serve with the protocol version as a parameter, so tests can
// play a driver from another version.
func serve(driver Driver, version int) {
	hs := handshake
	hs.ProtocolVersion = uint(version)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		VersionedPlugins: map[int]plugin.PluginSet{
			version: {pluginName: &driverPlugin{impl: driver}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts,
				grpc.InitialWindowSize(streamWindow),
				grpc.InitialConnWindowSize(connWindow),
				grpc.MaxRecvMsgSize(maxMessage),
			)
			return grpc.NewServer(opts...)
		},
	})
}

// processStderr is the driver process's own standard error, which the host
// reads and logs. It is taken before Serve runs: go-plugin's Serve points
// os.Stderr at a pipe whose output the host discards.
var processStderr = os.Stderr

// Logger returns a logger for driver code. Its JSON lines on the process's
// stderr are understood by the host, which re-logs them with their level
// under the driver's name.
func Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(processStderr, &slog.HandlerOptions{
		ReplaceAttr: hclogKeys,
	}))
}

// hclogKeys renames slog's keys to those go-plugin's host parses. The time
// is dropped: the host stamps lines when it re-logs them.
func hclogKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		return slog.Attr{}
	case slog.LevelKey:
		a.Key = "@level"
	case slog.MessageKey:
		a.Key = "@message"
	}
	return a
}

// driverPlugin is the go-plugin glue on both sides: the driver process uses
// impl, the host only the client constructor.
type driverPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Driver
}

// GRPCServer registers the driver's gRPC service in the driver process.
func (p *driverPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	driverpb.RegisterDriverServer(s, &grpcServer{impl: p.impl})
	return nil
}

// GRPCClient returns the host-side stub.
func (p *driverPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &grpcClient{rpc: driverpb.NewDriverClient(c)}, nil
}
