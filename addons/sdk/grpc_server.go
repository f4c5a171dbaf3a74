package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/keepsake-dev/keepsake/addons/sdk/internal/calls"
	driverpb "github.com/keepsake-dev/keepsake/addons/sdk/proto"
)

// chunkSize is the payload of one data message. Large enough that per-
// message costs vanish, small enough that the flow-control window holds
// several.
const chunkSize = 512 << 10

// maxMessage bounds a received message; a chunk plus framing fits easily.
const maxMessage = 4 << 20

// grpcServer adapts a Driver to the gRPC service, in the driver process.
type grpcServer struct {
	driverpb.UnimplementedDriverServer
	impl Driver
}

// Info implements driverpb.DriverServer.
func (s *grpcServer) Info(ctx context.Context, _ *driverpb.InfoRequest) (resp *driverpb.InfoResponse, err error) {
	defer recoverPanic("Info", &err)
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, driverError(ctx, err)
	}
	return infoToProto(info), nil
}

// Backup implements driverpb.DriverServer.
func (s *grpcServer) Backup(in *driverpb.BackupRequest, stream driverpb.Driver_BackupServer) (err error) {
	defer recoverPanic("Backup", &err)
	ctx := stream.Context()
	req, err := s.resolve(ctx, in.GetRequest())
	if err != nil {
		return err
	}
	w := &chunkWriter{send: func(b []byte) error {
		return stream.Send(&driverpb.BackupChunk{Kind: &driverpb.BackupChunk_Data{Data: b}})
	}}
	err = s.impl.Backup(ctx, &BackupRequest{Request: req}, w)
	logIfCancelled(ctx, "Backup")
	if err != nil {
		return driverError(ctx, err)
	}
	if err := w.flush(); err != nil {
		return err
	}
	return stream.Send(&driverpb.BackupChunk{Kind: &driverpb.BackupChunk_End{End: &driverpb.End{Bytes: w.n}}})
}

// Restore implements driverpb.DriverServer.
func (s *grpcServer) Restore(stream driverpb.Driver_RestoreServer) (err error) {
	defer recoverPanic("Restore", &err)
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	header := first.GetHeader()
	if header == nil {
		return status.Error(codes.InvalidArgument, "the first restore message must be the request header")
	}
	req, err := s.resolve(ctx, header)
	if err != nil {
		return err
	}
	if err := stream.SendHeader(metadata.Pairs(calls.StartedHeader, "true")); err != nil {
		return err
	}
	r := &chunkReader{recv: stream.Recv}
	restored, err := s.impl.Restore(ctx, &RestoreRequest{Request: req}, r)
	logIfCancelled(ctx, "Restore")
	if err != nil {
		return driverError(ctx, err)
	}
	if !r.atEnd() {
		return status.Errorf(codes.Internal, "driver returned from Restore after reading %d bytes, before the end of the stream", r.n)
	}
	return stream.SendAndClose(&driverpb.RestoreResponse{Bytes: r.n, Restored: restoredToProto(restored)})
}

// resolve turns the wire request into the Request the driver sees, with
// parameters resolved against the driver's own declaration.
func (s *grpcServer) resolve(ctx context.Context, in *driverpb.Request) (Request, error) {
	req := requestFromProto(in)
	info, err := s.impl.Info(ctx)
	if err != nil {
		return req, driverError(ctx, err)
	}
	req.Params, err = ResolveParams(info.Parameters, req.Params)
	if err != nil {
		return req, status.Error(codes.InvalidArgument, err.Error())
	}
	return req, nil
}

// logIfCancelled tells the host that a cancelled call has returned: the
// host gave up on the call at once and cannot see when the driver stops.
func logIfCancelled(ctx context.Context, method string) {
	if ctx.Err() != nil {
		Logger().Info(calls.ReturnedAfterCancel, "method", method)
	}
}

// driverError carries a driver's error to the host with its message intact.
func driverError(ctx context.Context, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// recoverPanic turns a panic of the calling method into its error, and logs
// the stack on stderr, which the host forwards to its log.
func recoverPanic(method string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	Logger().Error("driver panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*err = status.Errorf(codes.Internal, "driver panicked in %s: %v", method, r)
}

// chunkWriter is the io.Writer a driver's Backup writes to. It cuts the
// dump into chunkSize messages; Send blocks under gRPC flow control, which
// is how a slow restic slows the driver down.
type chunkWriter struct {
	send func([]byte) error
	buf  []byte
	n    uint64
}

// Write implements io.Writer.
func (w *chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if w.buf == nil {
			// A fresh buffer per message: gRPC may still hold a sent one.
			w.buf = make([]byte, 0, chunkSize)
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		written += k
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.send(w.buf); err != nil {
		return fmt.Errorf("send dump chunk to host: %w", err)
	}
	w.n += uint64(len(w.buf))
	w.buf = nil
	return nil
}

// chunkReader is the io.Reader a driver's Restore reads from. It returns
// io.EOF only after the host's end marker with a matching byte count; a
// stream that breaks off is an error, never a short but clean EOF.
type chunkReader struct {
	recv func() (*driverpb.RestoreChunk, error)
	cur  []byte
	n    uint64
	done bool
	err  error
}

// Read implements io.Reader.
func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.done {
			return 0, io.EOF
		}
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.next()
	}
	k := copy(p, r.cur)
	r.cur = r.cur[k:]
	r.n += uint64(k)
	return k, nil
}

func (r *chunkReader) next() error {
	msg, err := r.recv()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("restore stream closed by the host without an end marker after %d bytes", r.n)
	}
	if err != nil {
		return fmt.Errorf("receive restore chunk: %w", err)
	}
	switch k := msg.GetKind().(type) {
	case *driverpb.RestoreChunk_Data:
		r.cur = k.Data
	case *driverpb.RestoreChunk_End:
		if k.End.GetBytes() != r.n {
			return fmt.Errorf("restore stream ended after %d bytes but the host sent %d", r.n, k.End.GetBytes())
		}
		r.done = true
	default:
		return fmt.Errorf("unexpected restore message %T after the header", k)
	}
	return nil
}

// atEnd reports whether the whole stream was read, peeking once for the end
// marker when the driver stopped right after the last byte.
func (r *chunkReader) atEnd() bool {
	if !r.done && len(r.cur) == 0 && r.err == nil {
		var b [1]byte
		n, err := r.Read(b[:])
		return n == 0 && errors.Is(err, io.EOF)
	}
	return r.done && len(r.cur) == 0
}
