package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// prometheus runs instant queries through Prometheus's own client, which
// knows the API's quirks (POST with a GET fallback, error envelopes). The
// window is unused: PromQL carries its own range, e.g. rate(x[1m]).
type prometheus struct {
	api    v1.API
	client *client
}

// newPrometheus needs an address. Credentials are optional: username and
// password for basic auth, or token for a bearer token.
func newPrometheus(cfg Config) (Provider, error) {
	addr, err := baseURL(cfg.Address, "")
	if err != nil {
		return nil, err
	}
	header := headerWith(cfg)
	basic, err := basicAuth(cfg)
	if err != nil {
		return nil, err
	}
	token := cfg.Credentials["token"]
	switch {
	case len(token) > 0 && basic != "":
		return nil, errors.New(`credentials "token" and "username"/"password" are mutually exclusive`)
	case len(token) > 0:
		header.Set("Authorization", "Bearer "+string(token))
	case basic != "":
		header.Set("Authorization", basic)
	}
	c := newClient(cfg, header)
	hc := *c.http
	hc.Transport = statusRecorder{next: hc.Transport}
	ac, err := api.NewClient(api.Config{Address: addr, Client: &hc})
	if err != nil {
		return nil, err
	}
	return &prometheus{api: v1.NewAPI(ac), client: c}, nil
}

func (p *prometheus) Query(ctx context.Context, query string, _ time.Duration) (float64, error) {
	var last lastResponse
	ctx = context.WithValue(ctx, lastResponseKey{}, &last)
	result, _, err := p.api.Query(ctx, query, time.Now()) // warnings do not make a value wrong
	if err != nil {
		return 0, p.explain(err, last)
	}
	switch v := result.(type) {
	case *model.Scalar:
		return float64(v.Value), nil
	case model.Vector:
		switch {
		case len(v) == 0:
			return 0, ErrNoData
		case len(v) > 1:
			return 0, fmt.Errorf("query must return one series, got %d", len(v))
		case v[0].Histogram != nil:
			return 0, errors.New("query returned a native histogram, want a float sample")
		}
		return float64(v[0].Value), nil
	default:
		return 0, fmt.Errorf("query returned a %s, want a scalar or an instant vector", result.Type())
	}
}

// explain rewrites the client's error for a non-2xx answer, which carries
// neither the status code (400 and 422) nor the body (others) in its text.
func (p *prometheus) explain(err error, last lastResponse) error {
	var apiErr *v1.Error
	if last.status/100 == 2 || last.status == 0 || !errors.As(err, &apiErr) {
		return err
	}
	detail := apiErr.Detail
	if detail == "" { // 400 and 422: the client decoded the error envelope
		detail = string(apiErr.Type) + ": " + apiErr.Msg
	}
	return p.client.statusError(last.status, last.header, []byte(detail), prometheusMessage)
}

// prometheusMessage reads Prometheus's error envelope.
func prometheusMessage(body []byte) string {
	var e struct {
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return ""
	}
	return e.ErrorType + ": " + e.Error
}

// lastResponse is the status and header of a query's last HTTP response,
// which the Prometheus client does not return with its errors.
type lastResponse struct {
	status int
	header http.Header
}

type lastResponseKey struct{}

// statusRecorder fills the lastResponse found in a request's context.
type statusRecorder struct{ next http.RoundTripper }

func (t statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if last, ok := req.Context().Value(lastResponseKey{}).(*lastResponse); ok && err == nil {
		last.status, last.header = resp.StatusCode, resp.Header
	}
	return resp, err
}
