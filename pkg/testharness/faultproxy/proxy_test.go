package faultproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/serin-dev/serin/pkg/testharness/faultproxy"
)

// echoServer echoes every connection back until the client closes it.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads back as many bytes, within timeout.
func roundTrip(c net.Conn, msg string, timeout time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestForwardAndSever(t *testing.T) {
	p := newProxy(t, echoServer(t))
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	for _, c := range []net.Conn{a, b} {
		if got, err := roundTrip(c, "hello", time.Second); err != nil || got != "hello" {
			t.Fatalf("echo through the proxy = %q, %v", got, err)
		}
	}
	// A big payload crosses in many chunks.
	big := strings.Repeat("0123456789abcdef", 64<<10)
	if got, err := roundTrip(a, big, 5*time.Second); err != nil || got != big {
		t.Fatalf("echoing 1 MiB: %v (got %d bytes)", err, len(got))
	}
	if n := p.Connections(); n != 2 {
		t.Errorf("Connections() = %d, want 2", n)
	}

	p.Sever()
	if n := p.Connections(); n != 0 {
		t.Errorf("Connections() after Sever = %d, want 0", n)
	}
	for _, c := range []net.Conn{a, b} {
		if _, err := roundTrip(c, "x", time.Second); !errors.Is(err, io.EOF) && !isReset(err) {
			t.Errorf("severed connection: err = %v, want EOF or reset", err)
		}
	}

	c := dial(t, p.Addr())
	if got, err := roundTrip(c, "again", time.Second); err != nil || got != "again" {
		t.Fatalf("echo after Sever = %q, %v", got, err)
	}

	// The client closing its side ends the connection on the proxy too.
	c.Close()
	waitFor(t, "the closed connection to be forgotten", func() bool { return p.Connections() == 0 })
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func TestBlock(t *testing.T) {
	p := newProxy(t, echoServer(t))
	before := dial(t, p.Addr())
	if _, err := roundTrip(before, "up", time.Second); err != nil {
		t.Fatal(err)
	}

	p.Block(true)
	if _, err := roundTrip(before, "x", time.Second); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("connection open at Block(true): err = %v, want EOF or reset", err)
	}
	// New connections are accepted, then hang: a timeout, not a refusal.
	held := dial(t, p.Addr())
	if _, err := roundTrip(held, "held", 300*time.Millisecond); !os.IsTimeout(err) {
		t.Fatalf("connection while blocked: err = %v, want a timeout", err)
	}
	if n := p.Connections(); n != 1 {
		t.Errorf("Connections() while holding one = %d, want 1", n)
	}

	p.Block(false)
	// What the client sent while held is forwarded once unblocked.
	if err := held.SetDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("held"))
	if _, err := io.ReadFull(held, buf); err != nil || string(buf) != "held" {
		t.Fatalf("held connection after Block(false) read %q, %v", buf, err)
	}
	if got, err := roundTrip(dial(t, p.Addr()), "free", time.Second); err != nil || got != "free" {
		t.Fatalf("new connection after Block(false) = %q, %v", got, err)
	}

	// Sever closes held connections too.
	p.Block(true)
	held = dial(t, p.Addr())
	waitFor(t, "the held connection", func() bool { return p.Connections() == 1 })
	p.Sever()
	if _, err := roundTrip(held, "x", time.Second); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("held connection after Sever: err = %v, want EOF or reset", err)
	}
}

func TestDelay(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p.Addr())
	const d = 100 * time.Millisecond
	p.SetDelay(d)
	start := time.Now()
	if _, err := roundTrip(c, "slow", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// One chunk each way.
	if took := time.Since(start); took < 2*d {
		t.Errorf("round trip with delay %v took %v, want at least %v", d, took, 2*d)
	}
	p.SetDelay(0)
	start = time.Now()
	if _, err := roundTrip(c, "fast", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= d {
		t.Errorf("round trip without delay took %v", took)
	}
}

// Close ends every goroutine of the proxy, including those of held,
// delayed and forwarding connections.
func TestCloseStopsEverything(t *testing.T) {
	target := echoServer(t)
	baseline := runtime.NumGoroutine()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 5 {
		c := dial(t, p.Addr())
		if _, err := roundTrip(c, "hi", time.Second); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	p.SetDelay(time.Hour)
	if _, err := io.WriteString(conns[0], "stuck in a delay"); err != nil {
		t.Fatal(err)
	}
	p.Block(true)
	for range 3 {
		dial(t, p.Addr())
	}
	waitFor(t, "the held connections", func() bool { return p.Connections() == 3 })

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := p.Connections(); n != 0 {
		t.Errorf("Connections() after Close = %d", n)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("dialling a closed proxy succeeded")
	}
	// The echo server's goroutines end once their clients are gone.
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "pong")
	}))
	t.Cleanup(srv.Close)
	p := newProxy(t, srv.Listener.Addr().String())
	client := &http.Client{Timeout: 2 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	get := func() (string, error) {
		resp, err := client.Get("http://" + p.Addr() + "/ping")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}

	for range 3 {
		if body, err := get(); err != nil || body != "pong" {
			t.Fatalf("GET through the proxy = %q, %v", body, err)
		}
	}
	if n := p.Connections(); n != 1 {
		t.Errorf("Connections() with one kept-alive client = %d, want 1", n)
	}

	// The client notices the severed idle connection and dials again.
	p.Sever()
	waitFor(t, "a GET after Sever", func() bool {
		body, err := get()
		return err == nil && body == "pong"
	})

	// Blocked, a request times out instead of being refused.
	p.Block(true)
	client.CloseIdleConnections()
	if _, err := get(); err == nil || !os.IsTimeout(err) && !strings.Contains(err.Error(), "Client.Timeout") {
		t.Errorf("GET while blocked: err = %v, want a timeout", err)
	}
	p.Block(false)
	if body, err := get(); err != nil || body != "pong" {
		t.Fatalf("GET after Block(false) = %q, %v", body, err)
	}
}

// A request written in pieces and the server's line-by-line answer cross
// the proxy intact under delay.
func TestHTTPWithDelay(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	}))
	t.Cleanup(srv.Close)
	p := newProxy(t, srv.Listener.Addr().String())
	p.SetDelay(20 * time.Millisecond)
	c := dial(t, p.Addr())
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"GET / HTTP/1.1\r\n", "Host: x\r\n", "Connection: close\r\n\r\n"} {
		if _, err := io.WriteString(c, part); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "ok\n" || resp.StatusCode != http.StatusOK {
		t.Fatalf("response %s %q, %v", resp.Status, body, err)
	}
}

func TestNewRejectsBadTarget(t *testing.T) {
	if _, err := faultproxy.New("no-port"); err == nil {
		t.Error("New(\"no-port\") succeeded")
	}
}
