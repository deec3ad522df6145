// Package webhook is the one HTTP client Serin uses to call the webhooks of
// a Canary's analysis: gates, load tests and event hooks. It follows
// Flagger's protocol (a JSON POST, success on 200-202) and keeps each call
// bounded in time, in redirects and in how much of the response it reads.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/pkg/httpreply"
	"github.com/serin-dev/serin/pkg/internal/httpx"
)

// Caller calls webhooks. The controller depends on this interface rather
// than on Client so that its tests can do without a network.
type Caller interface {
	// Call POSTs payload to hook.URL with the extra header (the hook's
	// credentials, see AuthHeader; may be nil), retrying up to hook.Retries
	// times.
	Call(ctx context.Context, hook v1beta1.CanaryWebhook, payload Payload, header http.Header) Result
}

// Result is the outcome of a Call, retries included.
type Result struct {
	StatusCode int    // of the last attempt; 0 if no response
	Attempts   int    // requests sent; 0 if the hook is misconfigured
	Body       []byte // capped body of the last response
	Err        error  // nil on success
}

// OK reports whether the webhook accepted the call.
func (r Result) OK() bool { return r.Err == nil }

const (
	// DefaultTimeout bounds a call whose hook sets no timeout, as in Flagger.
	DefaultTimeout = 10 * time.Second

	// maxBodyBytes caps what is read of a response: a gate's answer is its
	// status code, the body only explains it.
	maxBodyBytes = 64 << 10
	// maxRedirects is how many redirects a call follows.
	maxRedirects = 3
)

// redirects follows a few redirects, all on the webhook's origin: the
// payload may carry tokens meant for that host only.
var redirects = httpx.Redirects{Max: maxRedirects}

// Client calls webhooks over the process's shared transport, so that
// connections to a hook (typically the load tester, called at every
// iteration) are reused.
// It is safe for concurrent use.
type Client struct {
	http *http.Client
	// insecure skips TLS verification, for hooks with disableTLS.
	insecure *http.Client
	// firstBackoff is the wait before the first retry; it doubles at each
	// retry up to maxBackoff.
	firstBackoff, maxBackoff time.Duration
}

var _ Caller = (*Client)(nil)

// NewClient returns a Client. The http.Client has no global timeout, as each
// call is bounded by its hook's timeout; the transport (see httpx) bounds
// dialing and TLS handshakes on its own.
func NewClient() *Client {
	return &Client{
		http:         httpx.NewClient(httpx.Options{}, redirects, nil),
		insecure:     httpx.NewClient(httpx.Options{InsecureSkipVerify: true}, redirects, nil),
		firstBackoff: time.Second,
		maxBackoff:   5 * time.Second,
	}
}

// Call POSTs payload as JSON to hook.URL. Each attempt is bounded by the
// hook's timeout; a failed attempt is retried hook.Retries times after a
// backoff that ends early if ctx is done. A misconfigured hook (bad timeout
// or URL) fails without any request.
func (c *Client) Call(ctx context.Context, hook v1beta1.CanaryWebhook, payload Payload, header http.Header) Result {
	timeout, err := parseTimeout(hook.Timeout)
	if err != nil {
		return Result{Err: fmt.Errorf("webhook %q: %w", hook.Name, err)}
	}
	if err := checkURL(hook.URL); err != nil {
		return Result{Err: fmt.Errorf("webhook %q: %w", hook.Name, err)}
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return Result{Err: fmt.Errorf("webhook %q: encoding payload: %w", hook.Name, err)}
	}

	var res Result
	for {
		res.Attempts++
		res.StatusCode, res.Body, res.Err = c.post(ctx, c.clientFor(hook), hook.URL, body, header, timeout)
		if res.Err == nil || res.Attempts > hook.Retries {
			break
		}
		if err := sleep(ctx, c.backoff(res.Attempts)); err != nil {
			res.Err = fmt.Errorf("%w; retries abandoned: %w", res.Err, err)
			break
		}
	}
	if res.Err != nil {
		res.Err = fmt.Errorf("webhook %q failed after %d attempt(s): %w", hook.Name, res.Attempts, res.Err)
	}
	return res
}

// clientFor is the HTTP client of hook: one that does not verify the
// server's certificate when the hook sets disableTLS.
func (c *Client) clientFor(hook v1beta1.CanaryWebhook) *http.Client {
	if hook.DisableTLS {
		return c.insecure
	}
	return c.http
}

// post makes one attempt with hc, bounded by timeout.
func (c *Client) post(parent context.Context, hc *http.Client, target string, body []byte, header http.Header, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	// timedOut tells the hook's own timeout apart from the caller's ctx.
	timedOut := func(err error) error {
		if ctx.Err() != nil && parent.Err() == nil {
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return err
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	httpx.AddAbsent(req.Header, header)
	resp, err := hc.Do(req)
	if err != nil {
		code := 0
		if resp != nil { // a refused redirect
			code = resp.StatusCode
		}
		return code, nil, timedOut(httpreply.RedactURLs(err))
	}
	defer resp.Body.Close()

	// The status is the answer: a body past the cap is kept cut.
	data, err := httpx.ReadBody(resp.Body, maxBodyBytes)
	if err != nil && !errors.Is(err, httpx.ErrBodyTooLarge) {
		return resp.StatusCode, data, fmt.Errorf("reading response: %w", timedOut(err))
	}
	// The hook's credentials are not quoted, should it echo them: the body
	// reaches the Canary's status and Events, on success too.
	redactor := httpreply.NewRedactor(headerValues(header)...)
	reply := redactor.Redact(string(data))
	if resp.StatusCode < http.StatusOK || resp.StatusCode > http.StatusAccepted {
		return resp.StatusCode, []byte(reply), httpreply.NewStatusError(resp.StatusCode, resp.Header, redactor.Excerpt(reply))
	}
	return resp.StatusCode, []byte(reply), nil
}

// backoff is the wait after the given number of failed attempts.
func (c *Client) backoff(failed int) time.Duration {
	d := c.firstBackoff
	for i := 1; i < failed && d < c.maxBackoff; i++ {
		d *= 2
	}
	return min(d, c.maxBackoff)
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// parseTimeout reads a hook's timeout; the API validates it, but a value
// that slipped through must fail the call, not the controller.
func parseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid timeout: %w", err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("invalid timeout %q: must be positive", s)
	}
	return d, nil
}

// checkURL rejects what is not an absolute http or https URL before any
// request is made, so that a typo is not retried as a transport failure.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid url: %w", httpreply.RedactURLs(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid url %q: not an absolute http or https URL", httpreply.RedactURL(s))
	}
	return nil
}

// headerValues lists the values of the hook's credentials, which no error
// may quote: whole, and the token of an Authorization value alone.
func headerValues(header http.Header) []string {
	var s []string
	for name, vs := range header {
		for _, v := range vs {
			s = append(s, v)
			if _, token, ok := strings.Cut(v, " "); ok && http.CanonicalHeaderKey(name) == "Authorization" {
				s = append(s, strings.TrimSpace(token))
			}
		}
	}
	return s
}
