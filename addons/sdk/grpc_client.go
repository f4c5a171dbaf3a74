package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"

	"github.com/keepsake-dev/keepsake/addons/sdk/internal/calls"
	driverpb "github.com/keepsake-dev/keepsake/addons/sdk/proto"
)

// grpcClient is the host-side stub of the gRPC service. Its errors are raw;
// Client turns them into messages for users.
type grpcClient struct {
	rpc driverpb.DriverClient
}

// errProtocol marks a driver that broke the stream contract.
var errProtocol = errors.New("driver protocol violation")

func (c *grpcClient) info(ctx context.Context) (Info, error) {
	resp, err := c.rpc.Info(ctx, &driverpb.InfoRequest{})
	if err != nil {
		return Info{}, err
	}
	return infoFromProto(resp), nil
}

// backup copies the driver's dump into w. It returns the bytes copied,
// with the counts of the end marker, and nil only when the driver sent
// its end marker with a matching count and finished the call cleanly.
func (c *grpcClient) backup(ctx context.Context, req *BackupRequest, w io.Writer) (BackupResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the driver's stream if we return early
	var res BackupResult
	stream, err := c.rpc.Backup(ctx, &driverpb.BackupRequest{Request: requestToProto(req.Request)})
	if err != nil {
		return res, err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return res, fmt.Errorf("%w: dump stream ended without an end marker after %d bytes", errProtocol, res.Bytes)
		}
		if err != nil {
			return res, err
		}
		switch k := msg.GetKind().(type) {
		case *driverpb.BackupChunk_Data:
			if _, err := w.Write(k.Data); err != nil {
				return res, &sinkError{err: err}
			}
			res.Bytes += uint64(len(k.Data))
		case *driverpb.BackupChunk_End:
			res.Counts = countsFromProto(k.End.GetCounts())
			return res, finishBackup(stream, res.Bytes, k.End.GetBytes())
		}
	}
}

// finishBackup checks the end marker and waits for the call's clean end.
func finishBackup(stream driverpb.Driver_BackupClient, got, sent uint64) error {
	if got != sent {
		return fmt.Errorf("%w: received %d dump bytes but the driver sent %d", errProtocol, got, sent)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		if err == nil {
			return fmt.Errorf("%w: data after the end marker", errProtocol)
		}
		return err
	}
	return nil
}

// restore streams r into the driver. A read error of r aborts the call, so
// the driver sees a broken stream rather than a clean end.
func (c *grpcClient) restore(ctx context.Context, req *RestoreRequest, r io.Reader) (RestoreResult, error) {
	resp, n, err := sendDump(ctx, c.rpc.Restore, req.Request, r)
	res := RestoreResult{Bytes: n}
	if err != nil {
		return res, err
	}
	res.Restored = restoredFromProto(resp.GetRestored())
	return res, nil
}

// verify streams r into the driver's Verify, as restore does.
func (c *grpcClient) verify(ctx context.Context, req *VerifyRequest, r io.Reader) (VerifyResult, error) {
	resp, n, err := sendDump(ctx, c.rpc.Verify, req.Request, r)
	res := VerifyResult{Bytes: n}
	if err != nil {
		return res, err
	}
	res.Counts = countsFromProto(resp.GetCounts())
	return res, nil
}

// dumpResponse is the answer to a dump the host streamed in: it says how
// many bytes the driver read.
type dumpResponse[T any] interface {
	*T
	GetBytes() uint64
}

// sendDump opens a call with open (Restore or Verify) and streams the
// request header, r and the end marker into it. It returns the driver's
// answer and the bytes sent; the driver must have read them all.
func sendDump[T any, R dumpResponse[T]](ctx context.Context, open func(context.Context, ...grpc.CallOption) (grpc.ClientStreamingClient[driverpb.RestoreChunk, T], error),
	req Request, r io.Reader) (R, uint64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := open(ctx)
	if err != nil {
		return nil, 0, err
	}
	if started := calls.Started(ctx); started != nil {
		go func() {
			if md, err := stream.Header(); err == nil && len(md.Get(calls.StartedHeader)) > 0 {
				started()
			}
		}()
	}
	header := &driverpb.RestoreChunk{Kind: &driverpb.RestoreChunk_Header{Header: requestToProto(req)}}
	if err := stream.Send(header); err != nil {
		return nil, 0, closeAndRecvError(stream, err)
	}
	n, err := sendChunks(stream, r)
	if err != nil {
		return nil, n, err
	}
	end := &driverpb.RestoreChunk{Kind: &driverpb.RestoreChunk_End{End: &driverpb.End{Bytes: n}}}
	if err := stream.Send(end); err != nil {
		return nil, n, closeAndRecvError(stream, err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, n, err
	}
	if R(resp).GetBytes() != n {
		return nil, n, fmt.Errorf("%w: sent %d bytes but the driver read %d", errProtocol, n, R(resp).GetBytes())
	}
	return resp, n, nil
}

// sendChunks sends r as data messages, each a fresh buffer of up to
// chunkSize bytes, until r ends.
func sendChunks[T any](stream grpc.ClientStreamingClient[driverpb.RestoreChunk, T], r io.Reader) (uint64, error) {
	var n uint64
	for {
		buf := make([]byte, chunkSize)
		k, rerr := fill(r, buf)
		if k > 0 {
			msg := &driverpb.RestoreChunk{Kind: &driverpb.RestoreChunk_Data{Data: buf[:k]}}
			if err := stream.Send(msg); err != nil {
				return n, closeAndRecvError(stream, err)
			}
			n += uint64(k)
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			return n, nil
		default:
			return n, &sourceError{err: rerr}
		}
	}
}

// fill reads from r until buf is full or r fails. Unlike io.ReadFull it
// passes r's own errors through untouched: io.EOF is the end of the
// stream, and a source's io.ErrUnexpectedEOF (a truncated stream) stays a
// failure instead of looking like a short last chunk.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// closeAndRecvError returns the driver's status when Send failed because
// the driver already ended the call (Send then only says io.EOF).
func closeAndRecvError[T any](stream grpc.ClientStreamingClient[driverpb.RestoreChunk, T], sendErr error) error {
	if !errors.Is(sendErr, io.EOF) {
		return sendErr
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return err
	}
	return fmt.Errorf("%w: driver ended the call before the end of the stream", errProtocol)
}

// sinkError is a failure of the host's writer during Backup, not of the
// driver.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return "write dump: " + e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// sourceError is a failure of the host's reader during Restore, not of the
// driver.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read restore stream: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }
