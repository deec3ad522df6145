package httpx

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer answers "ok" and counts the connections it accepts.
func countingServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func ok(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, "ok")
}

// get makes one call the way the checks do: a client of its own per call,
// the body read to the end and closed. It may run off the test goroutine.
func get(t *testing.T, o Options, target string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		t.Error(err)
		return
	}
	resp, err := NewClient(o, Redirects{Max: 3}, nil).Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	if _, err := ReadBody(resp.Body, 1<<10); err != nil {
		t.Error(err)
	}
}

// TestConnectionsAreReused: 300 calls, each through a client made for it,
// open a handful of connections to their server, not 300.
func TestConnectionsAreReused(t *testing.T) {
	const calls = 300
	t.Run("one after the other", func(t *testing.T) {
		srv, conns := countingServer(t, ok)
		for range calls {
			get(t, Options{}, srv.URL)
		}
		t.Logf("%d calls, %d connections", calls, conns.Load())
		if n := conns.Load(); n > 2 {
			t.Errorf("%d calls opened %d connections, want one or two", calls, n)
		}
	})
	t.Run("8 at a time", func(t *testing.T) {
		srv, conns := countingServer(t, ok)
		var wg sync.WaitGroup
		work := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				for range work {
					get(t, Options{}, srv.URL)
				}
			})
		}
		for range calls {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		t.Logf("%d calls, %d connections", calls, conns.Load())
		// At most one per call in flight, and a few more while dials race
		// with connections being released.
		if n := conns.Load(); n > 16 {
			t.Errorf("%d calls opened %d connections, want at most 16", calls, n)
		}
	})
}

func TestTransportCache(t *testing.T) {
	c := newCache(2)
	proxy, _ := url.Parse("http://user:pa55@proxy.example:3128")
	plain, insecure, proxied := Options{}, Options{InsecureSkipVerify: true}, Options{Proxy: proxy}

	get := func(o Options) *http.Transport { return c.get(o.key(), o) }
	a := get(plain)
	if get(plain) != a || get(Options{}) != a {
		t.Error("equal options got different transports")
	}
	b := get(insecure)
	if b == a || !b.TLSClientConfig.InsecureSkipVerify || a.TLSClientConfig.InsecureSkipVerify {
		t.Error("InsecureSkipVerify does not set transports apart")
	}
	samePlace, _ := url.Parse(proxy.String())
	if get(proxied) != get(Options{Proxy: samePlace}) {
		t.Error("the same proxy got different transports")
	}
	if c.lru.Len() != 2 || c.created != 3 {
		t.Errorf("cache holds %d of %d transports made, want 2 of 3", c.lru.Len(), c.created)
	}
	// plain was the least recently used: evicted, so made anew.
	if get(plain) == a {
		t.Error("an evicted transport came back")
	}
	for k := range c.byKey {
		if strings.Contains(string(k[:]), "pa55") {
			t.Error("the cache key holds the proxy's password")
		}
	}
	req := httptest.NewRequest(http.MethodGet, "http://metrics.example/", nil)
	if got, err := get(proxied).Proxy(req); err != nil || got.String() != proxy.String() {
		t.Errorf("proxy = %v, %v; want %s", got, err, proxy)
	}
}

func TestRedirects(t *testing.T) {
	mustParse := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	check := func(p Redirects, from, to string, hops int) error {
		via := []*http.Request{{URL: mustParse(from)}}
		for range hops - 1 {
			via = append(via, &http.Request{URL: mustParse(from)})
		}
		return p.Check(&http.Request{URL: mustParse(to)}, via)
	}
	same, anyScheme, none := Redirects{Max: 3}, Redirects{Max: 3, AnyScheme: true}, Redirects{}
	for _, tc := range []struct {
		name     string
		policy   Redirects
		from, to string
		hops     int
		want     error // nil, ErrCrossHostRedirect or ErrUseLastResponse
		wantText string
	}{
		{"same origin", same, "http://svc/a", "http://svc:80/b", 1, nil, ""},
		{"host case and default port", same, "https://svc/", "https://SVC:443/x", 1, nil, ""},
		{"scheme change", same, "http://svc/", "https://svc/", 1, ErrCrossHostRedirect, "the request went to http://svc:80, the redirect points to https://svc:443"},
		{"other port", same, "http://svc:8080/", "http://svc:8081/", 1, ErrCrossHostRedirect, ""},
		{"other host", same, "http://svc/", "http://svc.other/", 1, ErrCrossHostRedirect, ""},
		{"no userinfo quoted", same, "http://u:pw@svc/", "http://u:pw@evil/", 1, ErrCrossHostRedirect, "http://svc:80"},
		{"too many", same, "http://svc/", "http://svc/", 4, nil, "stopped after 3 redirects"},
		{"any scheme: upgrade", anyScheme, "http://prom:9090/", "https://prom:9090/", 1, nil, ""},
		{"any scheme: other host", anyScheme, "http://prom/", "https://evil/", 1, ErrCrossHostRedirect, ""},
		{"none followed", none, "http://svc/", "http://svc/x", 1, http.ErrUseLastResponse, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(tc.policy, tc.from, tc.to, tc.hops)
			switch {
			case tc.wantText != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantText) {
					t.Errorf("Check = %v, want %q", err, tc.wantText)
				}
				if err != nil && strings.Contains(err.Error(), "pw") {
					t.Errorf("Check = %v quotes the password", err)
				}
			case tc.want == nil && err != nil:
				t.Errorf("Check = %v, want the redirect followed", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("Check = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWithHeader(t *testing.T) {
	got := make(chan http.Header, 1)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header })
	header := http.Header{"X-Scope-Orgid": {"tenant"}, "Accept": {"text/plain"}}
	c := NewClient(Options{}, Redirects{}, func(rt http.RoundTripper) http.RoundTripper { return WithHeader(rt, header) })
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	if h.Get("X-Scope-Orgid") != "tenant" || h.Get("Accept") != "application/json" {
		t.Errorf("sent %v: want the extra header added and the request's Accept kept", h)
	}
	if len(req.Header) != 1 {
		t.Errorf("the caller's request was modified: %v", req.Header)
	}
}

func TestBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		size    int
		wantErr bool
	}{{0, false}, {1023, false}, {1024, false}, {1025, true}, {1 << 20, true}} {
		data, err := ReadBody(strings.NewReader(strings.Repeat("x", tc.size)), 1024)
		if tc.wantErr != errors.Is(err, ErrBodyTooLarge) || (!tc.wantErr && err != nil) {
			t.Errorf("%d bytes: error %v, want too large: %v", tc.size, err, tc.wantErr)
		}
		if len(data) != min(tc.size, 1024) {
			t.Errorf("%d bytes: read %d, want the first %d", tc.size, len(data), min(tc.size, 1024))
		}
	}
	_, err := ReadBody(strings.NewReader(strings.Repeat("x", 5<<20)), 4<<20)
	if err == nil || err.Error() != "response body exceeds 4 MiB" {
		t.Errorf("error %v, want it to say the limit", err)
	}
}

// TestClientOutlivesEviction: a client keeps working once its transport
// was dropped from the cache, and then uses the cache's new one rather
// than keeping the old one alive beside it.
func TestClientOutlivesEviction(t *testing.T) {
	saved := shared
	shared = newCache(1)
	t.Cleanup(func() { shared = saved })
	srv, _ := countingServer(t, ok)

	client := NewClient(Options{}, Redirects{}, nil)
	call := func() {
		t.Helper()
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	call()
	first := Transport(Options{})
	Transport(Options{InsecureSkipVerify: true}) // evicts the first
	call()
	if Transport(Options{}) == first || shared.created != 3 {
		t.Errorf("after eviction the client kept its transport (%d made)", shared.created)
	}
}
