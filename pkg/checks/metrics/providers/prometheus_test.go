package providers

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

const promQuery = `sum(rate(http_requests_total{app="podinfo",status!~"5.."}[1m]))` + trickyQuery

func promConfig(address string) Config {
	return Config{
		Type:        "prometheus",
		Address:     address,
		Headers:     map[string][]string{extraHeader: {extraHeaderValue}},
		Credentials: map[string][]byte{"token": []byte("prom-token-3f9a")},
	}
}

// checkPromRequest accepts the client's POST (or its GET fallback) to
// /api/v1/query.
func checkPromRequest(t *testing.T, r *http.Request, _ []byte) {
	t.Helper()
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		t.Errorf("method = %s, want POST or GET", r.Method)
	}
	if r.URL.Path != "/api/v1/query" {
		t.Errorf("path = %q, want /api/v1/query", r.URL.Path)
	}
	if err := r.ParseForm(); err != nil {
		t.Fatalf("parsing form: %v", err)
	}
	if got := r.Form.Get("query"); got != promQuery {
		t.Errorf("query = %q, want %q", got, promQuery)
	}
	if r.Form.Get("time") == "" {
		t.Error("no evaluation time")
	}
	assertHeader(t, r, "Authorization", "Bearer prom-token-3f9a")
	assertHeader(t, r, extraHeader, extraHeaderValue)
}

func TestPrometheusQuery(t *testing.T) {
	vector := func(samples string) string {
		return `{"status":"success","data":{"resultType":"vector","result":[` + samples + `]}}`
	}
	sample := func(value string) string {
		return `{"metric":{"app":"podinfo"},"value":[1700000000.123,"` + value + `"]}`
	}
	runQueryCases(t, promConfig, promQuery, time.Minute, checkPromRequest, []queryCase{
		{name: "vector with one sample", reply: reply{body: vector(sample("0.99"))}, want: 0.99},
		{name: "scalar", reply: reply{body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}`}, want: 42},
		{name: "warnings ignored", reply: reply{body: `{"status":"success","warnings":["PromQL info: metric might not be a counter"],` +
			`"data":{"resultType":"vector","result":[` + sample("7") + `]}}`}, want: 7},
		{name: "empty vector", reply: reply{body: vector("")}, wantIs: ErrNoData},
		{name: "NaN", reply: reply{body: vector(sample("NaN"))}, wantIs: ErrNoData},
		{name: "+Inf", reply: reply{body: vector(sample("+Inf"))}, wantIs: ErrNoData},
		{name: "two samples", reply: reply{body: vector(sample("1") + "," + sample("2"))},
			wantErr: []string{"query must return one series, got 2"}},
		{name: "matrix", reply: reply{body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`},
			wantErr: []string{"want a scalar or an instant vector"}},
		{name: "bad query", reply: reply{status: http.StatusBadRequest, body: `{"status":"error","errorType":"bad_data",` +
			`"error":"invalid parameter \"query\": 1:12: parse error: unexpected end of input"}`},
			wantErr: []string{"HTTP 400 Bad Request", "bad_data: invalid parameter", "parse error"}},
		{name: "execution error", reply: reply{status: http.StatusUnprocessableEntity, body: `{"status":"error",` +
			`"errorType":"execution","error":"query processing would load too many samples into memory"}`},
			wantErr: []string{"HTTP 422", "execution: query processing would load too many samples"}},
		{name: "unauthorized by a proxy", reply: reply{status: http.StatusUnauthorized, body: "Unauthorized\n"},
			wantErr: []string{"HTTP 401 Unauthorized: Unauthorized"}},
		{name: "unavailable", reply: reply{status: http.StatusServiceUnavailable, body: `{"status":"error",` +
			`"errorType":"unavailable","error":"Service Unavailable: not ready"}`},
			wantErr: []string{"HTTP 503", "unavailable: Service Unavailable: not ready"}},
		{name: "internal error", reply: reply{status: http.StatusInternalServerError, body: "upstream connect error"},
			wantErr: []string{"HTTP 500 Internal Server Error: upstream connect error"}},
		{name: "rate limited", reply: reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "12"},
			body: "too many requests"}, wantErr: []string{"rate limited (HTTP 429; retry after 12s): too many requests"}},
		{name: "token echoed", reply: reply{status: http.StatusForbidden, body: `token "prom-token-3f9a" is not allowed`},
			wantErr: []string{"HTTP 403", `token "[redacted]" is not allowed`}},
		{name: "malformed body", reply: reply{body: `{"status":"success","data":`}, wantErr: []string{"bad_response"}},
	})
}

func TestPrometheusAuth(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pa:ss"))
	tests := []struct {
		name        string
		credentials map[string][]byte
		headers     map[string][]string
		want        string
	}{
		{"none", nil, nil, ""},
		{"basic", map[string][]byte{"username": []byte("admin"), "password": []byte("pa:ss")}, nil, basic},
		{"bearer", map[string][]byte{"token": []byte("t0k3n")}, nil, "Bearer t0k3n"},
		{"bearer wins over a header", map[string][]byte{"token": []byte("t0k3n")},
			map[string][]string{"Authorization": {"Bearer other"}}, "Bearer t0k3n"},
		{"header without credentials", nil, map[string][]string{"Authorization": {"Bearer from-header"}}, "Bearer from-header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				assertHeader(t, r, "Authorization", tc.want)
				_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`)
			}))
			defer srv.Close()
			p, err := New(Config{Type: "prometheus", Address: srv.URL, Credentials: tc.credentials, Headers: tc.headers})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if _, err := p.Query(context.Background(), "up", time.Minute); err != nil {
				t.Fatalf("Query: %v", err)
			}
		})
	}
}

func TestPrometheusTimeout(t *testing.T) {
	t.Parallel() // waits out its timeout: overlap those waits
	testHung(t, promConfig, promQuery)
}
