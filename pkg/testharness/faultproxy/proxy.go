// Package faultproxy is a TCP proxy for tests that injects network faults
// between a client and a server: severed connections, a partition that
// leaves clients hanging, and added latency.
//
// It forwards bytes and knows nothing of the protocol, so TLS passes through
// it unchanged.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// dialTimeout bounds connecting to the target; a client connection
	// whose target cannot be reached is closed.
	dialTimeout = 10 * time.Second
	bufSize     = 32 << 10
)

// Proxy listens on a loopback port and forwards every connection to a
// target address. Its methods may be called from any goroutine.
type Proxy struct {
	target string
	ln     net.Listener
	delay  atomic.Int64 // time.Duration added before each forwarded chunk

	mu    sync.Mutex
	conns map[*conn]struct{}
	// unblocked is closed while connections are forwarded; Block(true)
	// replaces it with an open one that held connections wait on.
	unblocked chan struct{}
	closed    bool

	wg sync.WaitGroup // the accept loop and every connection's goroutines
}

// conn is one client connection and, once dialled, its upstream one.
type conn struct {
	client   net.Conn
	upstream net.Conn // guarded by Proxy.mu; nil while held or dialling
	// ctx ends when the connection is killed, abandoning a dial or a
	// delay.
	ctx    context.Context
	cancel context.CancelFunc
}

// New starts a proxy on 127.0.0.1 forwarding to target (host:port).
func New(target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	unblocked := make(chan struct{})
	close(unblocked)
	p := &Proxy{target: target, ln: ln, conns: map[*conn]struct{}{}, unblocked: unblocked}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the host:port the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Sever closes every open connection, forwarded or held, on both sides, as
// a network failure or a restarted middlebox would. New connections are
// accepted as before.
func (p *Proxy) Sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.severLocked(func(*conn) bool { return true })
}

// Block, while on, holds new connections: they are accepted but nothing is
// forwarded, so clients hang (in the TLS handshake, say) instead of being
// refused, as behind a network partition. Turning it on severs the
// connections being forwarded; turning it off forwards the held ones.
func (p *Proxy) Block(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.unblocked:
		if !on {
			return
		}
		p.unblocked = make(chan struct{})
		p.severLocked(func(c *conn) bool { return c.upstream != nil })
	default:
		if !on {
			close(p.unblocked)
		}
	}
}

// SetDelay makes the proxy wait d before forwarding each chunk it reads, in
// either direction, on new and open connections alike; 0 turns it off.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Connections is the number of client connections open, held ones
// included. A held connection the client has given up on still counts until
// it is forwarded or severed, since reading from it would consume its data.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops listening, closes every connection and returns once all the
// proxy's goroutines have ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	p.severLocked(func(*conn) bool { return true })
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) severLocked(match func(*conn) bool) {
	for c := range p.conns {
		if match(c) {
			p.killLocked(c)
		}
	}
}

// killLocked closes both sides of c and forgets it; its goroutines then
// end on their own. Killing twice does nothing.
func (p *Proxy) killLocked(c *conn) {
	if _, ok := p.conns[c]; !ok {
		return
	}
	delete(p.conns, c)
	c.cancel()
	c.client.Close()
	if c.upstream != nil {
		c.upstream.Close()
	}
}

func (p *Proxy) kill(c *conn) {
	p.mu.Lock()
	p.killLocked(c)
	p.mu.Unlock()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: try again shortly rather
			// than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			client.Close()
			return
		}
		c := &conn{client: client}
		c.ctx, c.cancel = context.WithCancel(context.Background())
		p.conns[c] = struct{}{}
		// Added under mu, before Close can start waiting.
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(c)
	}
}

// serve waits out a block, dials the target and copies upstream to client
// itself while a second goroutine copies the other way.
func (p *Proxy) serve(c *conn) {
	defer p.wg.Done()
	defer p.kill(c)
	upstream := p.connect(c)
	if upstream == nil {
		return
	}
	p.wg.Add(1)
	toUpstream := make(chan struct{})
	go func() {
		defer p.wg.Done()
		defer close(toUpstream)
		p.copy(c, upstream, c.client)
	}()
	p.copy(c, c.client, upstream)
	<-toUpstream
}

// connect returns c's upstream connection once it is not blocked, or nil
// if c is killed first or the target cannot be reached.
func (p *Proxy) connect(c *conn) net.Conn {
	for {
		p.mu.Lock()
		unblocked := p.unblocked
		p.mu.Unlock()
		select {
		case <-unblocked:
		case <-c.ctx.Done():
			return nil
		}
		ctx, cancel := context.WithTimeout(c.ctx, dialTimeout)
		upstream, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.target)
		cancel()
		if err != nil {
			return nil
		}
		p.mu.Lock()
		select {
		case <-c.ctx.Done():
		case <-p.unblocked:
			c.upstream = upstream
			p.mu.Unlock()
			return upstream
		default:
			// Blocked again while dialling: hold c once more.
		}
		p.mu.Unlock()
		upstream.Close()
	}
}

// copy forwards src to dst until src ends, then passes the end on as a
// half-close, so that protocols which shut their writing side down keep
// working. Any error ends the whole connection.
func (p *Proxy) copy(c *conn, dst, src net.Conn) {
	buf := make([]byte, bufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-c.ctx.Done():
					t.Stop()
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				p.kill(c)
				return
			}
		}
		if errors.Is(err, io.EOF) {
			if tc, ok := dst.(*net.TCPConn); ok && tc.CloseWrite() == nil {
				return
			}
			p.kill(c)
			return
		}
		if err != nil {
			p.kill(c)
			return
		}
	}
}
