package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"

	"google.golang.org/grpc"
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
	if _, ok := s.impl.(Verifier); ok && !slices.Contains(info.Capabilities, CapabilityVerify) {
		info.Capabilities = append(slices.Clone(info.Capabilities), CapabilityVerify)
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
	breq := &BackupRequest{Request: req}
	err = s.impl.Backup(ctx, breq, w)
	logIfCancelled(ctx, "Backup")
	if err != nil {
		return driverError(ctx, err)
	}
	if err := w.flush(); err != nil {
		return err
	}
	return stream.Send(&driverpb.BackupChunk{Kind: &driverpb.BackupChunk_End{End: &driverpb.End{Bytes: w.n, Counts: breq.counts}}})
}

// Restore implements driverpb.DriverServer.
func (s *grpcServer) Restore(stream driverpb.Driver_RestoreServer) (err error) {
	defer recoverPanic("Restore", &err)
	var restored Restored
	n, err := serveDump(s, stream, "Restore", s.resolve, func(ctx context.Context, req Request, r io.Reader) (err error) {
		restored, err = s.impl.Restore(ctx, &RestoreRequest{Request: req}, r)
		return err
	})
	if err != nil {
		return err
	}
	return stream.SendAndClose(&driverpb.RestoreResponse{Bytes: n, Restored: restoredToProto(restored)})
}

// Verify implements driverpb.DriverServer: a Verifier counts the dump, any
// other driver answers Unimplemented before reading it. Parameters the
// driver requires are not required here: a verify Job has no target.
func (s *grpcServer) Verify(stream driverpb.Driver_VerifyServer) (err error) {
	defer recoverPanic("Verify", &err)
	v, ok := s.impl.(Verifier)
	if !ok {
		return status.Error(codes.Unimplemented, "the driver cannot verify a dump (it implements no Verify)")
	}
	var counts Counts
	n, err := serveDump(s, stream, "Verify", s.resolveOptional, func(ctx context.Context, req Request, r io.Reader) (err error) {
		counts, err = v.Verify(ctx, &VerifyRequest{Request: req}, r)
		return err
	})
	if err != nil {
		return err
	}
	return stream.SendAndClose(&driverpb.VerifyResponse{Bytes: n, Counts: counts})
}

// serveDump runs call on a dump the host streams in (Restore, Verify): the
// request header, announced as started once resolved, then data up to the
// end marker, which call must read to the end. It returns the bytes call
// read.
func serveDump[Resp any](s *grpcServer, stream grpc.ClientStreamingServer[driverpb.RestoreChunk, Resp], method string,
	resolve func(context.Context, *driverpb.Request) (Request, error), call func(context.Context, Request, io.Reader) error) (uint64, error) {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return 0, err
	}
	header := first.GetHeader()
	if header == nil {
		return 0, status.Errorf(codes.InvalidArgument, "the first %s message must be the request header", strings.ToLower(method))
	}
	req, err := resolve(ctx, header)
	if err != nil {
		return 0, err
	}
	if err := stream.SendHeader(metadata.Pairs(calls.StartedHeader, "true")); err != nil {
		return 0, err
	}
	r := &chunkReader{recv: stream.Recv}
	err = call(ctx, req, r)
	logIfCancelled(ctx, method)
	if err != nil {
		return 0, driverError(ctx, err)
	}
	if !r.atEnd() {
		return 0, status.Errorf(codes.Internal, "driver returned from %s after reading %d bytes, before the end of the stream", method, r.n)
	}
	return r.n, nil
}

// resolve turns the wire request into the Request the driver sees, with
// parameters resolved against the driver's own declaration.
func (s *grpcServer) resolve(ctx context.Context, in *driverpb.Request) (Request, error) {
	return s.resolveParams(ctx, in, false)
}

// resolveOptional is resolve with no parameter required.
func (s *grpcServer) resolveOptional(ctx context.Context, in *driverpb.Request) (Request, error) {
	return s.resolveParams(ctx, in, true)
}

// resolveParams is resolve; optional drops the required flag of every
// declared parameter.
func (s *grpcServer) resolveParams(ctx context.Context, in *driverpb.Request, optional bool) (Request, error) {
	req := requestFromProto(in)
	info, err := s.impl.Info(ctx)
	if err != nil {
		return req, driverError(ctx, err)
	}
	declared := info.Parameters
	if optional {
		declared = slices.Clone(declared)
		for i := range declared {
			declared[i].Required = false
		}
	}
	req.Params, err = ResolveParams(declared, req.Params)
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
