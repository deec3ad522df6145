package providers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// maxBodyBytes caps what is read of a response: a query answers one
	// number, so a larger body is a wrong query or a wrong address.
	maxBodyBytes = 4 << 20
	// maxExcerptBytes is how much of an error body an error quotes: enough
	// to say why, short enough for an event.
	maxExcerptBytes = 256
	// maxRedirects is how many redirects a query follows.
	maxRedirects = 3
)

var errBodyTooLarge = fmt.Errorf("response body exceeds %d MiB", maxBodyBytes>>20)

// client is a provider's HTTP client: one transport, so that connections
// are reused across the queries of every analysis, and the secrets its
// error excerpts must not quote.
type client struct {
	http    *http.Client
	secrets []string
}

// newClient returns a client whose requests carry header (the extra headers
// and the provider's authentication) unless they set those keys themselves.
// It has no global timeout: each query is bounded by its context.
func newClient(cfg Config, header http.Header) *client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	base := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 10,
	}
	return &client{
		http:    &http.Client{Transport: &transport{base: base, header: header}, CheckRedirect: checkRedirect},
		secrets: secrets(cfg),
	}
}

// headerWith copies the extra headers of cfg, to which a provider then adds
// its authentication.
func headerWith(cfg Config) http.Header {
	h := http.Header{}
	for k, vs := range cfg.Headers {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return h
}

// addAbsent copies into dst the keys of src that dst lacks, so that what a
// provider sets for its protocol (Accept, Content-Type) wins over extras.
func addAbsent(dst, src http.Header) {
	for k, vs := range src {
		if _, ok := dst[k]; !ok {
			dst[k] = append([]string(nil), vs...)
		}
	}
}

// transport adds the provider's headers to each request and caps each
// response body. Headers are added here rather than by each caller so that
// client libraries (Prometheus's) get them too.
type transport struct {
	base   http.RoundTripper
	header http.Header
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.header) > 0 {
		req = req.Clone(req.Context()) // a RoundTripper must not modify its request
		addAbsent(req.Header, t.header)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxBodyBytes}
	return resp, nil
}

// cappedBody fails a read past maxBodyBytes instead of truncating silently,
// so that a cut JSON document is not mistaken for a malformed one.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var probe [1]byte
		n, err := b.ReadCloser.Read(probe[:])
		if n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	p = p[:min(int64(len(p)), b.left)]
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// checkRedirect follows a few redirects on the same host only: requests
// carry API keys meant for that host.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if req.URL.Host != via[0].URL.Host {
		return errors.New("redirect to another host refused")
	}
	return nil
}

// get sends a GET for JSON; see do.
func (c *client) get(ctx context.Context, url string, message func([]byte) string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	return c.do(req, message)
}

// do sends req and returns the body of a 2xx answer. Any other answer is a
// statusError quoting message(body), the backend's own explanation, or the
// body itself when message finds none.
func (c *client) do(req *http.Request, message func([]byte) string) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		// An error body cut by the cap still explains the error.
		return nil, c.statusError(resp.StatusCode, resp.Header.Get("Retry-After"), body, message)
	}
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	return body, nil
}

// statusError builds the error for a non-2xx answer.
func (c *client) statusError(code int, retryAfter string, body []byte, message func([]byte) string) error {
	text := ""
	if message != nil {
		text = message(body)
	}
	if text == "" {
		text = string(body)
	}
	return &statusError{code: code, retryAfter: strings.TrimSpace(retryAfter), excerpt: c.excerpt(text)}
}

// excerpt makes s one short line of valid UTF-8 without secrets, redacted
// before it is cut so that no part of a secret survives the cut.
func (c *client) excerpt(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	s = redact(s, c.secrets)
	if len(s) <= maxExcerptBytes {
		return s
	}
	cut := maxExcerptBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// statusError is a backend's refusal: its status and why.
type statusError struct {
	code       int
	retryAfter string
	excerpt    string
}

func (e *statusError) Error() string {
	var b strings.Builder
	if e.code == http.StatusTooManyRequests {
		b.WriteString("rate limited (HTTP 429")
		if e.retryAfter != "" {
			b.WriteString("; retry after " + e.retryAfter)
			if _, err := strconv.Atoi(e.retryAfter); err == nil {
				b.WriteString("s")
			}
		}
		b.WriteString(")")
	} else {
		fmt.Fprintf(&b, "HTTP %d %s", e.code, http.StatusText(e.code))
	}
	if e.excerpt != "" {
		b.WriteString(": " + e.excerpt)
	}
	return b.String()
}
