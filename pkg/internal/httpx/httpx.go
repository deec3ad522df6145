// Package httpx is the HTTP plumbing shared by everything Serin calls out
// to: webhooks, metrics backends and alert receivers. It keeps one
// transport per destination configuration, so that repeated calls (a check
// per Canary per interval) reuse their connections instead of leaving one
// idle connection, and its two goroutines, behind per call; it bounds
// redirects and response bodies. What an error says of a reply (status,
// excerpt, redaction) is pkg/httpreply's.
//
// Every call must carry its own deadline in its context: the clients here
// have no global timeout, only bounds on dialing and TLS handshakes.
package httpx

import (
	"container/list"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options is what sets one destination's transport apart from another's.
// Two calls with equal Options share a transport and its connections.
type Options struct {
	// InsecureSkipVerify turns off TLS certificate verification.
	InsecureSkipVerify bool
	// Proxy, when set, carries every request; nil means the environment's
	// (HTTPS_PROXY, NO_PROXY...). It may hold credentials.
	Proxy *url.URL
}

// key identifies Options in the cache by a hash, so that the cache does not
// hold a proxy's credentials in clear.
func (o Options) key() [sha256.Size]byte {
	proxy := ""
	if o.Proxy != nil {
		proxy = o.Proxy.String()
	}
	return sha256.Sum256(fmt.Appendf(nil, "insecure=%t\x00proxy=%s", o.InsecureSkipVerify, proxy))
}

// newTransport is the transport for o: dialing and TLS handshakes are
// bounded on their own so that a stuck peer cannot hold a connection
// attempt longer than a call would allow anyway, and idle connections are
// closed after a while.
func newTransport(o Options) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	proxy := http.ProxyFromEnvironment
	if o.Proxy != nil {
		proxy = http.ProxyURL(o.Proxy)
	}
	return &http.Transport{
		Proxy:               proxy,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify, MinVersion: tls.VersionTLS12}, //nolint:gosec // opt-in per destination
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 10,
	}
}

// maxTransports bounds the cache: destinations differ by TLS settings and
// proxies, of which a cluster has few. Past that, the least recently used
// transport is dropped and its idle connections closed.
const maxTransports = 64

// shared is the process's transport cache.
var shared = newCache(maxTransports)

// Transport returns the shared transport for o, made on first use. Callers
// must not modify it, and should not keep it: NewClient's clients look it
// up at each request, so that a transport the cache dropped is not kept
// alive beside its successor.
func Transport(o Options) *http.Transport { return shared.get(o.key(), o) }

// cached is the RoundTripper of NewClient's clients: the cache's transport
// for its Options at each request.
type cached struct {
	key  [sha256.Size]byte
	opts Options
}

func (c cached) RoundTrip(req *http.Request) (*http.Response, error) {
	return shared.get(c.key, c.opts).RoundTrip(req)
}

// cache keeps the most recently used transports, keyed by Options.
type cache struct {
	mu      sync.Mutex
	max     int
	byKey   map[[sha256.Size]byte]*list.Element
	lru     *list.List // of *entry, most recently used first
	created int        // transports made, for tests
}

type entry struct {
	key [sha256.Size]byte
	t   *http.Transport
}

func newCache(max int) *cache {
	return &cache{max: max, byKey: map[[sha256.Size]byte]*list.Element{}, lru: list.New()}
}

// get returns the transport for o, whose key is k.
func (c *cache) get(k [sha256.Size]byte, o Options) *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*entry).t
	}
	t := newTransport(o)
	c.created++
	c.byKey[k] = c.lru.PushFront(&entry{key: k, t: t})
	for c.lru.Len() > c.max {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		e := oldest.Value.(*entry)
		delete(c.byKey, e.key)
		// Calls in flight on it finish; whoever still holds it can use it.
		e.t.CloseIdleConnections()
	}
	return t
}

// ErrCrossHostRedirect refuses a redirect away from the host of the
// request: requests carry payloads and credentials meant for that host.
var ErrCrossHostRedirect = errors.New("redirect to another host refused")

// Redirects is a redirect policy.
type Redirects struct {
	// Max is how many redirects a call follows; with 0 none is, and the
	// 3xx reply is the call's answer.
	Max int
	// AnyScheme lets a redirect change the scheme on the same host:port as
	// written (http to https behind an ingress). Without it a redirect must
	// stay on the request's origin: scheme, host and port.
	AnyScheme bool
}

// Check is an http.Client CheckRedirect.
func (p Redirects) Check(req *http.Request, via []*http.Request) error {
	if p.Max == 0 {
		return http.ErrUseLastResponse
	}
	if len(via) > p.Max {
		return fmt.Errorf("stopped after %d redirects", p.Max)
	}
	from, to := Origin(via[0].URL), Origin(req.URL)
	if p.AnyScheme {
		if strings.EqualFold(req.URL.Host, via[0].URL.Host) {
			return nil
		}
	} else if from == to {
		return nil
	}
	return fmt.Errorf("%w: the request went to %s, the redirect points to %s", ErrCrossHostRedirect, from, to)
}

// Origin is scheme://host:port with the port made explicit, so that
// http://h and http://h:80 compare equal. It never includes userinfo.
func Origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// NewClient is an http.Client over the shared transport for o, wrapped by
// wrap when set (to add headers, say), following redirects as policy says.
// It is cheap: make one per destination, or per call.
func NewClient(o Options, policy Redirects, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	var rt http.RoundTripper = cached{key: o.key(), opts: o}
	if wrap != nil {
		rt = wrap(rt)
	}
	return &http.Client{Transport: rt, CheckRedirect: policy.Check}
}

// AddAbsent copies into dst the keys of src that dst lacks, so that what a
// caller sets for its protocol (Accept, Content-Type) wins over extras.
func AddAbsent(dst, src http.Header) {
	for k, vs := range src {
		if _, ok := dst[k]; !ok {
			dst[k] = append([]string(nil), vs...)
		}
	}
}

// WithHeader adds header to each request that lacks its keys. Headers are
// added by a RoundTripper rather than by each caller so that client
// libraries (Prometheus's) send them too.
func WithHeader(next http.RoundTripper, header http.Header) http.RoundTripper {
	if len(header) == 0 {
		return next
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		req = req.Clone(req.Context()) // a RoundTripper must not modify its request
		AddAbsent(req.Header, header)
		return next.RoundTrip(req)
	})
}

// WithBodyLimit caps each response body at limit bytes (see LimitBody), for
// client libraries that read bodies themselves.
func WithBodyLimit(next http.RoundTripper, limit int64) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		resp.Body = LimitBody(resp.Body, limit)
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// ErrBodyTooLarge: a response body went past its cap.
var ErrBodyTooLarge = errors.New("response body too large")

// bodyTooLarge says by how much; errors.Is(err, ErrBodyTooLarge) holds.
type bodyTooLarge struct{ limit int64 }

func (e bodyTooLarge) Error() string {
	if e.limit >= 1<<20 && e.limit%(1<<20) == 0 {
		return fmt.Sprintf("response body exceeds %d MiB", e.limit>>20)
	}
	if e.limit >= 1<<10 && e.limit%(1<<10) == 0 {
		return fmt.Sprintf("response body exceeds %d KiB", e.limit>>10)
	}
	return fmt.Sprintf("response body exceeds %d bytes", e.limit)
}

func (e bodyTooLarge) Is(target error) bool { return target == ErrBodyTooLarge }

// LimitBody fails a read past limit bytes instead of truncating silently,
// so that a cut JSON document is not mistaken for a malformed one.
func LimitBody(rc io.ReadCloser, limit int64) io.ReadCloser {
	return &cappedBody{ReadCloser: rc, left: limit, limit: limit}
}

type cappedBody struct {
	io.ReadCloser
	left, limit int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var probe [1]byte
		n, err := b.ReadCloser.Read(probe[:])
		if n > 0 {
			return 0, bodyTooLarge{b.limit}
		}
		return 0, err
	}
	p = p[:min(int64(len(p)), b.left)]
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// ReadBody reads at most limit bytes of body. Past that it returns what it
// read and an error matching ErrBodyTooLarge; callers for which the status
// is the answer may keep the start and ignore that error.
func ReadBody(body io.Reader, limit int64) ([]byte, error) {
	rc, ok := body.(io.ReadCloser)
	if !ok {
		rc = io.NopCloser(body)
	}
	return io.ReadAll(LimitBody(rc, limit))
}
