package providers

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/serin-dev/serin/pkg/httpreply"
	"github.com/serin-dev/serin/pkg/internal/httpx"
)

// Values no error may quote. The extra header is one too: such headers
// often carry tokens.
const (
	extraHeader      = "X-Scope-OrgID"
	extraHeaderValue = "tenant-secret-7c1e"
)

// trickyQuery ends each test query with characters that break a query
// string unless encoded.
const trickyQuery = ` & a+b=c #x %41 / "q"`

// reply is what a fake backend answers.
type reply struct {
	status int // 200 when zero
	header map[string]string
	body   string
}

// queryCase is one answer of a fake backend and what Query makes of it.
type queryCase struct {
	name    string
	query   string // the test's default when empty
	reply   reply
	want    float64
	wantIs  error    // errors.Is(err, wantIs)
	wantErr []string // substrings of the error
}

// runQueryCases serves each case's reply from a backend that first checks
// the request, then queries it through New(config(backend URL)).
func runQueryCases(t *testing.T, config func(address string) Config, query string, window time.Duration,
	check func(t *testing.T, r *http.Request, body []byte), cases []queryCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("reading request body: %v", err)
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				check(t, r, body)
				for k, v := range tc.reply.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(cmp.Or(tc.reply.status, http.StatusOK))
				_, _ = io.WriteString(w, tc.reply.body)
			}))
			defer srv.Close()

			cfg := config(srv.URL)
			p, err := New(cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got, err := p.Query(context.Background(), cmp.Or(tc.query, query), window)
			if tc.wantIs == nil && tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				if got != tc.want {
					t.Errorf("Query = %v, want %v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Query = %v, want an error", got)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Query error %q is not %v", err, tc.wantIs)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Query error %q does not contain %q", err, s)
				}
			}
			if !strings.HasPrefix(err.Error(), cfg.Type+": ") {
				t.Errorf("Query error %q does not start with the provider name", err)
			}
			assertNoSecret(t, cfg, err)
		})
	}
}

// assertNoSecret fails if err quotes a credential or an extra header value.
func assertNoSecret(t *testing.T, cfg Config, err error) {
	t.Helper()
	for key, v := range cfg.Credentials {
		if len(v) > 0 && strings.Contains(err.Error(), string(v)) {
			t.Errorf("error %q quotes credential %q", err, key)
		}
	}
	for key, vs := range cfg.Headers {
		for _, v := range vs {
			if strings.Contains(err.Error(), v) {
				t.Errorf("error %q quotes header %q", err, key)
			}
		}
	}
}

// testHung queries a backend that never answers with a 500ms timeout: the
// query must fail as timed out, well within 3s.
func testHung(t *testing.T, config func(address string) Config, query string) {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for handlers

	cfg := config(srv.URL)
	cfg.Timeout = 500 * time.Millisecond
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	start := time.Now()
	_, err = p.Query(context.Background(), query, time.Minute)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Query succeeded against a hung backend")
	}
	if elapsed > 3*time.Second {
		t.Errorf("Query took %s, want it bounded by the 500ms timeout", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 500ms") {
		t.Errorf("Query error %q, want a timeout", err)
	}
}

// assertHeader fails unless r carries header key with value want.
func assertHeader(t *testing.T, r *http.Request, key, want string) {
	t.Helper()
	if got := r.Header.Get(key); got != want {
		t.Errorf("header %s = %q, want %q", key, got, want)
	}
}

// assertParams fails unless r's query string decodes to exactly want,
// which proves the query text was encoded.
func assertParams(t *testing.T, r *http.Request, want url.Values) {
	t.Helper()
	got, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		t.Fatalf("parsing query string %q: %v", r.URL.RawQuery, err)
	}
	if len(got) != len(want) {
		t.Errorf("query string %q has parameters %v, want %v", r.URL.RawQuery, got, want)
	}
	for k, vs := range want {
		if g := got[k]; len(g) != 1 || g[0] != vs[0] {
			t.Errorf("query parameter %s = %q, want %q", k, g, vs[0])
		}
	}
}

func TestNewRejects(t *testing.T) {
	creds := func(kv ...string) map[string][]byte {
		m := map[string][]byte{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = []byte(kv[i+1])
		}
		return m
	}
	const addr = "https://metrics.example.com"
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"unknown type", Config{Type: "stackdriver", Address: addr}, `unknown metrics provider type "stackdriver"`},
		{"empty type", Config{Address: addr}, `unknown metrics provider type ""`},
		{"negative timeout", Config{Type: "graphite", Address: addr, Timeout: -time.Second}, "graphite: timeout must not be negative"},
		{"address not a URL", Config{Type: "graphite", Address: "https://user:hunter2@/x"}, "graphite: address is not an absolute http or https URL"},
		{"address without scheme", Config{Type: "graphite", Address: "graphite:8080"}, "graphite: address is not an absolute http or https URL"},

		{"prometheus without address", Config{Type: "prometheus"}, "prometheus: address is required"},
		{"prometheus username without password", Config{Type: "prometheus", Address: addr, Credentials: creds("username", "admin")}, `prometheus: missing credential "password"`},
		{"prometheus password without username", Config{Type: "prometheus", Address: addr, Credentials: creds("password", "hunter2")}, `prometheus: missing credential "username"`},
		{"prometheus token and basic auth", Config{Type: "prometheus", Address: addr, Credentials: creds("token", "t0k3n", "username", "admin", "password", "hunter2")}, "mutually exclusive"},

		{"datadog without api key", Config{Type: "datadog", Credentials: creds("datadog_application_key", "app-secret")}, `datadog: missing credential "datadog_api_key"`},
		{"datadog without application key", Config{Type: "datadog", Credentials: creds("datadog_api_key", "api-secret")}, `datadog: missing credential "datadog_application_key"`},
		{"datadog empty api key", Config{Type: "datadog", Credentials: creds("datadog_api_key", "", "datadog_application_key", "app-secret")}, `datadog: missing credential "datadog_api_key"`},

		{"cloudwatch without region", Config{Type: "cloudwatch", Credentials: creds("aws_access_key_id", "AKID", "aws_secret_access_key", "aws-secret")}, "cloudwatch: region is required"},
		{"cloudwatch without key id", Config{Type: "cloudwatch", Region: "eu-west-1", Credentials: creds("aws_secret_access_key", "aws-secret")}, `cloudwatch: missing credential "aws_access_key_id"`},
		{"cloudwatch without secret key", Config{Type: "cloudwatch", Region: "eu-west-1", Credentials: creds("aws_access_key_id", "AKID")}, `cloudwatch: missing credential "aws_secret_access_key"`},

		{"newrelic without account", Config{Type: "newrelic", Credentials: creds("newrelic_query_key", "nr-secret")}, `newrelic: missing credential "newrelic_account_id"`},
		{"newrelic without query key", Config{Type: "newrelic", Credentials: creds("newrelic_account_id", "1234")}, `newrelic: missing credential "newrelic_query_key"`},

		{"graphite without address", Config{Type: "graphite"}, "graphite: address is required"},
		{"graphite password without username", Config{Type: "graphite", Address: addr, Credentials: creds("password", "hunter2")}, `graphite: missing credential "username"`},

		{"influxdb without address", Config{Type: "influxdb", Credentials: creds("token", "influx-secret")}, "influxdb: address is required"},
		{"influxdb without token", Config{Type: "influxdb", Address: addr, Credentials: creds("org", "acme")}, `influxdb: missing credential "token"`},

		{"dynatrace without address", Config{Type: "dynatrace", Credentials: creds("dynatrace_token", "dt-secret")}, "dynatrace: address is required"},
		{"dynatrace without token", Config{Type: "dynatrace", Address: addr}, `dynatrace: missing credential "dynatrace_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if err == nil {
				t.Fatalf("New = %T, want an error", p)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New error %q does not contain %q", err, tc.wantErr)
			}
			assertNoSecret(t, tc.cfg, err)
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("New error %q quotes the address's password", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	p, err := New(Config{Type: "datadog", Credentials: map[string][]byte{
		"datadog_api_key": []byte("k"), "datadog_application_key": []byte("a"),
	}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b := p.(*bounded)
	if b.timeout != DefaultTimeout {
		t.Errorf("timeout = %s, want %s", b.timeout, DefaultTimeout)
	}
	if got := b.p.(*datadog).base; got != "https://api.datadoghq.com" {
		t.Errorf("address = %q, want Datadog's default", got)
	}
}

// TestTransport covers what every provider shares: the body cap, the
// refusal of cross-host redirects (which would carry API keys away) and
// TLS verification with its opt-out.
func TestTransport(t *testing.T) {
	graphiteAt := func(addr string, insecure bool) Provider {
		t.Helper()
		p, err := New(Config{Type: "graphite", Address: addr, InsecureSkipVerify: insecure})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return p
	}
	const answer = `[{"target":"x","datapoints":[[1.5,1700000000]]}]`

	t.Run("body over the cap", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `[{"target":"`+strings.Repeat("x", maxBodyBytes)+`"}]`)
		}))
		defer srv.Close()
		_, err := graphiteAt(srv.URL, false).Query(context.Background(), "x", time.Minute)
		if !errors.Is(err, httpx.ErrBodyTooLarge) {
			t.Errorf("Query error %v, want %v", err, httpx.ErrBodyTooLarge)
		}
	})

	t.Run("redirect to another host", func(t *testing.T) {
		other := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			t.Errorf("redirect followed to %s", r.URL)
		}))
		defer other.Close()
		srv := httptest.NewServer(http.RedirectHandler(other.URL+"/render", http.StatusFound))
		defer srv.Close()
		_, err := graphiteAt(srv.URL, false).Query(context.Background(), "x", time.Minute)
		if err == nil || !strings.Contains(err.Error(), "redirect to another host refused") {
			t.Errorf("Query error %v, want a refused redirect", err)
		}
	})

	t.Run("redirect on the same host", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("/old/render", http.RedirectHandler("/render?target=x&from=-60s&format=json", http.StatusFound))
		mux.HandleFunc("/render", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, answer) })
		srv := httptest.NewServer(mux)
		defer srv.Close()
		got, err := graphiteAt(srv.URL+"/old", false).Query(context.Background(), "x", time.Minute)
		if err != nil || got != 1.5 {
			t.Errorf("Query = %v, %v; want 1.5", got, err)
		}
	})

	t.Run("TLS", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, answer)
		}))
		defer srv.Close()
		if _, err := graphiteAt(srv.URL, false).Query(context.Background(), "x", time.Minute); err == nil {
			t.Error("Query trusted a self-signed certificate")
		}
		if got, err := graphiteAt(srv.URL, true).Query(context.Background(), "x", time.Minute); err != nil || got != 1.5 {
			t.Errorf("Query with InsecureSkipVerify = %v, %v; want 1.5", got, err)
		}
	})
}

func TestWindowSeconds(t *testing.T) {
	tests := []struct {
		window  time.Duration
		want    int64
		wantErr bool
	}{
		{window: time.Second, want: 1},
		{window: 5 * time.Minute, want: 300},
		{window: 1500 * time.Millisecond, want: 2}, // rounded up: never less data than asked for
		{window: 999 * time.Millisecond, wantErr: true},
		{window: 0, wantErr: true},
		{window: -time.Minute, wantErr: true},
	}
	for _, tc := range tests {
		got, err := windowSeconds(tc.window)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("windowSeconds(%s) = %d, %v; want %d, error %t", tc.window, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestExcerpt(t *testing.T) {
	c := &client{redactor: httpreply.NewRedactor("s3cr3t", "s3cr3t-longer")}
	long := strings.Repeat("é", httpreply.MaxQuotedBytes) // 2 bytes per rune
	tests := []struct {
		name, in, want string
	}{
		{"whitespace collapsed", "  bad\n\tquery  ", "bad query"},
		{"secrets redacted, longest first", "key s3cr3t-longer and s3cr3t", "key [redacted] and [redacted]"},
		{"cut on a rune boundary", long, strings.Repeat("é", httpreply.MaxQuotedBytes/2) + "…"},
		{"invalid UTF-8 dropped", "a\xffb", "ab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.excerpt(tc.in); got != tc.want {
				t.Errorf("excerpt = %q, want %q", got, tc.want)
			}
		})
	}
}
