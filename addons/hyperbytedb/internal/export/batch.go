package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/keepsake-dev/keepsake/addons/hyperbytedb/internal/influx"
)

// batch is a run of points for one database and retention policy, with
// the dump line number of each, so a rejected write names its lines.
type batch struct {
	db, rp string
	buf    []byte
	lines  []int // dump line number of each point
	schema batchSchema
}

// add appends a point line of the dump; it is checked when the batch is
// sent.
func (b *batch) add(lineNo int, line []byte) {
	b.lines = append(b.lines, lineNo)
	b.buf = append(append(b.buf, line...), '\n')
}

// send checks the batch, converts it for InfluxDB 1.x and writes it.
func (b *batch) send(ctx context.Context, c *influx.Client, schema *restoredSchema) error {
	b.schema.hyper = schema.hyper
	wire, err := toWire(b.buf, &b.schema)
	if err != nil {
		return fmt.Errorf("database %q, retention policy %q: %w", b.db, b.rp, lineError(b.lines, err))
	}
	if err := schema.add(ctx, b.db, b.rp, &b.schema); err != nil {
		return fmt.Errorf("dump %s: %w", b.span(), err)
	}
	if err := c.Write(ctx, b.db, b.rp, wire); err != nil {
		return b.explain(wire, err)
	}
	return nil
}

// span names the batch's dump lines.
func (b *batch) span() string {
	first, last := b.lines[0], b.lines[len(b.lines)-1]
	if first == last {
		return fmt.Sprintf("line %d", first)
	}
	return fmt.Sprintf("lines %d-%d", first, last)
}

func (b *batch) reset(db, rp string) {
	b.db, b.rp = db, rp
	b.buf, b.lines = b.buf[:0], b.lines[:0]
}

// explain turns a write error into one naming the dump lines: the exact
// line when the server quotes it ("unable to parse '<point>': ..."), else
// the batch's range.
func (b *batch) explain(wire []byte, err error) error {
	where := b.span()
	var se *influx.StatusError
	if errors.As(err, &se) {
		if n, ok := b.quotedLine(wire, se.Message); ok {
			where = fmt.Sprintf("line %d", n)
		}
	}
	return fmt.Errorf("write %d points of database %q, retention policy %q (dump %s) rejected: %w",
		len(b.lines), b.db, b.rp, where, err)
}

// quotedLine finds the line the server quotes in wire, the buffer sent.
func (b *batch) quotedLine(wire []byte, msg string) (int, bool) {
	const prefix = "unable to parse '"
	i := strings.Index(msg, prefix)
	if i < 0 {
		return 0, false
	}
	quoted := msg[i+len(prefix):]
	if j := strings.LastIndex(quoted, "': "); j >= 0 {
		quoted = quoted[:j]
	}
	for k, line := range bytes.SplitAfter(wire, []byte{'\n'}) {
		if k < len(b.lines) && bytes.Equal(bytes.TrimSuffix(line, []byte{'\n'}), []byte(quoted)) {
			return b.lines[k], true
		}
	}
	return 0, false
}

// writerPool sends batches with a few concurrent writes; the first
// rejected write stops everything. It recycles batches, so memory is
// bounded by (writers + 1) batches.
type writerPool struct {
	client *influx.Client
	schema *restoredSchema
	jobs   chan *batch
	free   chan *batch
	wg     sync.WaitGroup
	cancel context.CancelFunc

	mu  sync.Mutex
	err error
}

func newWriterPool(ctx context.Context, c *influx.Client, schema *restoredSchema, writers int) (*writerPool, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	p := &writerPool{client: c, schema: schema, jobs: make(chan *batch), free: make(chan *batch, writers+1), cancel: cancel}
	for range writers + 1 {
		p.free <- &batch{}
	}
	for range writers {
		p.wg.Add(1)
		go p.work(ctx)
	}
	return p, ctx
}

func (p *writerPool) work(ctx context.Context) {
	defer p.wg.Done()
	for b := range p.jobs {
		if p.failed() == nil {
			if err := b.send(ctx, p.client, p.schema); err != nil {
				p.fail(err)
			}
		}
		p.free <- b
	}
}

// get returns an empty batch, waiting for one to be recycled.
func (p *writerPool) get(ctx context.Context, db, rp string) (*batch, error) {
	select {
	case b := <-p.free:
		b.reset(db, rp)
		return b, nil
	case <-ctx.Done():
		return nil, p.stopErr(ctx)
	}
}

// submit hands b to a writer, or returns the error that stopped the pool.
func (p *writerPool) submit(ctx context.Context, b *batch) error {
	if len(b.lines) == 0 {
		p.free <- b
		return p.failed()
	}
	select {
	case p.jobs <- b:
		return p.failed()
	case <-ctx.Done():
		return p.stopErr(ctx)
	}
}

// close waits for the writers and returns the first error.
func (p *writerPool) close() error {
	close(p.jobs)
	p.wg.Wait()
	p.cancel()
	return p.failed()
}

func (p *writerPool) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
		p.cancel()
	}
}

func (p *writerPool) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *writerPool) stopErr(ctx context.Context) error {
	if err := p.failed(); err != nil {
		return err
	}
	return ctx.Err()
}
