package nettrace

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
)

// A Dialer dials connections that record themselves as network
// operations: one per connection, from the start of the dial to Close,
// with the real bytes written and read on the wire and the first read or
// write error (end of file and errors after Close excepted). A failed dial
// is recorded as a failed operation, and so is a connection that becomes
// garbage without being closed.
//
// Use its DialContext as the DialContext of an [http.Transport] to count
// the bytes HTTP really moves, headers included.
type Dialer struct {
	// Base dials the connections. Nil means a zero net.Dialer.
	Base *net.Dialer
	// Network receives the operations, usually the Network of a
	// *telemetry.Recorder. DialContext returns an error wrapping
	// ErrNoNetwork if it is nil.
	Network Observer
	// Operation is the operation name recorded. Empty means ConnOperation.
	Operation string
	// TaskID returns the task id to record a connection under. Nil, or an
	// empty result, means the id given by WithTaskID in the dial's context
	// followed by "/conn-<n>", or else a generated "conn-<n>".
	TaskID func(ctx context.Context, network, address string) string
}

// Dial dials address on the named network with a background context. See
// [Dialer.DialContext].
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext dials address on the named network, as [net.Dialer.DialContext]
// does, and returns a connection that records its operation when closed.
// It returns the dial's error, which is also recorded.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.Network == nil {
		return nil, ErrNoNetwork
	}
	host, port := splitHostPort(network, address)
	op := d.Operation
	if op == "" {
		op = ConnOperation
	}
	o := start(d.Network, d.taskID(ctx, network, address), host, port, op)
	base := d.Base
	if base == nil {
		base = &net.Dialer{}
	}
	c, err := base.DialContext(ctx, network, address)
	if err != nil {
		o.end(err)
		return nil, err
	}
	nc := &conn{Conn: c, o: o}
	// A connection dropped without Close would leave the operation
	// pending for good: fail it once the connection is garbage.
	runtime.AddCleanup(nc, func(o *operation) { o.end(errConnNotClosed) }, o)
	return nc, nil
}

func (d *Dialer) taskID(ctx context.Context, network, address string) string {
	if d.TaskID != nil {
		if id := d.TaskID(ctx, network, address); id != "" {
			return id
		}
	}
	if id, ok := TaskIDFrom(ctx); ok {
		return id + "/conn-" + strconv.FormatUint(seq.Add(1), 10)
	}
	return nextID("conn")
}

// errConnNotClosed fails the operation of a connection that became garbage
// without being closed.
var errConnNotClosed = errors.New("nettrace: connection not closed (garbage collected)")

// conn counts the bytes of a connection and records its operation at Close.
type conn struct {
	net.Conn
	o       *operation
	closing atomic.Bool
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.o.received.Add(int64(n))
	c.noteErr(err)
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.o.sent.Add(int64(n))
	c.noteErr(err)
	return n, err
}

// noteErr remembers a read or write error, except the end of the stream
// and the errors that closing the connection causes.
func (c *conn) noteErr(err error) {
	if err == nil || err == io.EOF || c.closing.Load() || errors.Is(err, net.ErrClosed) {
		return
	}
	c.o.fail(err)
}

// Close closes the connection and records the operation.
func (c *conn) Close() error {
	c.closing.Store(true)
	err := c.Conn.Close()
	c.o.end(nil)
	return err
}
