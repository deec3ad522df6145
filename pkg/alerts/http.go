package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/serin-dev/serin/pkg/httpreply"
	"github.com/serin-dev/serin/pkg/internal/httpx"
)

const (
	contentTypeJSON = "application/json"

	// maxBodyBytes caps what is read of a response: success is the status
	// code, the body only explains a refusal.
	maxBodyBytes = 64 << 10
)

// redirects: none is followed. These services answer in place, and a
// redirect elsewhere would carry the payload (and for same-host redirects
// the token) where it was not meant to go.
var redirects = httpx.Redirects{Max: 0}

// endpoint is where a Notifier posts, and how.
type endpoint struct {
	kind        Type
	client      *http.Client
	timeout     time.Duration
	target      string // may differ from the address (Discord)
	contentType string
	token       string // set only by the types that send it
	// host is all that errors may say of the address.
	host string
	// redactor keeps the secrets out of errors, which quote response
	// bodies.
	redactor *httpreply.Redactor
}

// newEndpoint posts JSON to address, through proxy when set, else through
// the environment's. Notifiers with the same proxy share a transport, so
// that a Notifier built per event still reuses connections.
func newEndpoint(cfg Config, address, proxy *url.URL) *endpoint {
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	secrets := []string{cfg.Address, cfg.Token, cfg.Proxy, address.RawQuery}
	if len(address.EscapedPath()) > 1 {
		secrets = append(secrets, address.EscapedPath(), address.Path)
	}
	return &endpoint{
		kind:        cfg.Type,
		client:      httpx.NewClient(httpx.Options{Proxy: proxy}, redirects, nil),
		timeout:     timeout,
		target:      address.String(),
		contentType: contentTypeJSON,
		host:        address.Host,
		redactor:    httpreply.NewRedactor(secrets...),
	}
}

// send posts payload as the alert for m; a 2xx answer is success.
func (e *endpoint) send(parent context.Context, m Message, payload any) error {
	if err := m.validate(); err != nil {
		return e.fail(err)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return e.fail(fmt.Errorf("encoding payload: %w", err))
	}

	ctx, cancel := context.WithTimeout(parent, e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.target, bytes.NewReader(body))
	if err != nil {
		return e.fail(err)
	}
	req.Header.Set("Content-Type", e.contentType)
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}

	resp, err := e.client.Do(req)
	if err != nil {
		// url.Error quotes the URL; what went wrong is the error inside.
		if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
			err = uerr.Err
		}
		if ctx.Err() != nil && parent.Err() == nil {
			err = fmt.Errorf("timed out after %s: %w", e.timeout, err)
		}
		return e.fail(err)
	}
	defer resp.Body.Close()
	data, _ := httpx.ReadBody(resp.Body, maxBodyBytes) // the status decides
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return e.fail(httpreply.NewStatusError(resp.StatusCode, resp.Header, e.redactor.Excerpt(string(data))))
	}
	return nil
}

// fail names the provider type and host in err and redacts the secrets
// from its message, keeping err for errors.Is.
func (e *endpoint) fail(err error) error {
	return e.redactor.Error(fmt.Sprintf("%s alert to %s: %v", e.kind, e.host, err), err)
}
