package providers

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/serin-dev/serin/pkg/httpreply"
	"github.com/serin-dev/serin/pkg/internal/httpx"
)

const (
	// maxBodyBytes caps what is read of a response: a query answers one
	// number, so a larger body is a wrong query or a wrong address.
	maxBodyBytes = 4 << 20
	// maxRedirects is how many redirects a query follows.
	maxRedirects = 3
)

// redirects follows a few redirects on the same host:port only, whatever
// the scheme (http to https behind an ingress): requests carry API keys
// meant for that host.
var redirects = httpx.Redirects{Max: maxRedirects, AnyScheme: true}

// client is a provider's HTTP client, over the process's shared transport
// for its TLS settings, so that connections are reused across the queries
// of every analysis even though the checker builds a provider per query;
// and the redactor of the secrets its error excerpts must not quote.
type client struct {
	http     *http.Client
	redactor *httpreply.Redactor
}

// newClient returns a client whose requests carry header (the extra headers
// and the provider's authentication) unless they set those keys themselves,
// and whose response bodies are capped. It has no global timeout: each
// query is bounded by its context.
func newClient(cfg Config, header http.Header) *client {
	wrap := func(rt http.RoundTripper) http.RoundTripper {
		return httpx.WithBodyLimit(httpx.WithHeader(rt, header), maxBodyBytes)
	}
	return &client{
		http:     httpx.NewClient(httpx.Options{InsecureSkipVerify: cfg.InsecureSkipVerify}, redirects, wrap),
		redactor: httpreply.NewRedactor(secrets(cfg)...),
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
// status error quoting message(body), the backend's own explanation, or the
// body itself when message finds none.
func (c *client) do(req *http.Request, message func([]byte) string) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // capped by the transport
	if resp.StatusCode/100 != 2 {
		// An error body cut by the cap still explains the error.
		return nil, c.statusError(resp.StatusCode, resp.Header, body, message)
	}
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	return body, nil
}

// statusError builds the error for a non-2xx answer.
func (c *client) statusError(code int, header http.Header, body []byte, message func([]byte) string) error {
	text := ""
	if message != nil {
		text = message(body)
	}
	if text == "" {
		text = string(body)
	}
	return httpreply.NewStatusError(code, header, c.excerpt(text))
}

// excerpt makes s one short line of valid UTF-8 without secrets.
func (c *client) excerpt(s string) string { return c.redactor.Excerpt(s) }
