package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/serin-dev/serin/pkg/httpreply"
)

// The fuzz targets run their seeds with go test, and explore with
// go test -run '^$' -fuzz FuzzName -fuzztime 20s. None of them runs a
// command or sends a load: the targets' servers refuse both.

// FuzzDecodePayload: any body decodes to a checked payload or to a 400 or
// 413, never anything else, and a decoded payload survives a round trip.
func FuzzDecodePayload(f *testing.F) {
	for _, seed := range []string{
		`{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"abc","metadata":{"type":"load","url":"http://podinfo.test/"}}`,
		`{"name":"a.b","namespace":"team-a"}`,
		`{"name":"a","namespace":"ns"} `,
		`{"name":"a","namespace":"ns"}{}`,
		`{"name":"a","namespace":"ns","metadata":{"cmd":"echo"}}x`,
		`{"name":"","namespace":"ns"}`,
		`{"name":"a","namespace":"a.b"}`,
		`{"name":"a","namespace":"ns","metadata":{"k":1}}`,
		`{"NAME":"a","Namespace":"ns","name":"b"}`,
		`[]`, `null`, ``, `{`, `"\u0000"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodePayload(bytes.NewReader(data))
		if err != nil {
			if code := errorCode(err); code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge {
				t.Fatalf("refused with %d: %v", code, err)
			}
			return
		}
		if !namespaceName.MatchString(p.Namespace) || !canaryName.MatchString(p.Name) || len(p.Name) > 253 {
			t.Fatalf("accepted %q.%q", p.Name, p.Namespace)
		}
		if strings.Count(p.canaryKey(), ".") != strings.Count(p.Name, ".")+1 {
			t.Fatalf("key %q is ambiguous", p.canaryKey())
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodePayload(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("re-encoded %s: %v", b, err)
		}
		if !reflect.DeepEqual(normalized(p), normalized(again)) {
			t.Fatalf("round trip: %+v != %+v", p, again)
		}
	})
}

// normalized treats an empty metadata map as none, as omitempty does.
func normalized(p payload) payload {
	if len(p.Metadata) == 0 {
		p.Metadata = nil
	}
	return p
}

// FuzzParseLoadSpec: a load spec either fails with a 400 or is within
// every bound, and its requests can be built and framed as they were
// specified: no header or request can be smuggled through the metadata.
func FuzzParseLoadSpec(f *testing.F) {
	type seed struct{ url, method, headers, rate, concurrency, duration, requestTimeout, blocking, minSuccessRate, maxP99, body string }
	for _, s := range []seed{
		{"http://podinfo.test:9898/", "", "", "", "", "", "", "", "", "", ""},
		{"https://app.example.com/api?x=1", "post", `{"Content-Type":"application/json","Host":"app.example"}`, "100", "4", "30s", "2s", "true", "95", "500ms", "{}"},
		{"http://h/", "GET", "X-A: 1, X-B:two", "0.01", "100", "1h", "1m", "false", "0", "1m", ""},
		{"http://h/", "get", "k1:v1, k2 : v:2", "1000", "1", "10m", "1ns", "true", "100", "", ""},
		{"http://h/", "G ET", "X-A: a\r\nX-B: b", "1e-10", "0", "-1s", "0", "yes", "NaN", "x", ""},
		{"ftp://h/", "", `{"a":1}`, "Inf", "101", "11m", "2m", "1", "101", "2m", ""},
		{"http://u:p@h:1/p#f", "PUT", `{"Transfer-Encoding":"chunked"}`, "5", "2", "1s", "1s", "", "", "", "x"},
		{"http://[::1]:80/", "", `{"Host":"a:1"}`, "", "", "", "", "", "", "", ""},
		{"/relative", "", "", "", "", "", "", "", "", "", ""},
	} {
		f.Add(s.url, s.method, s.headers, s.rate, s.concurrency, s.duration, s.requestTimeout, s.blocking, s.minSuccessRate, s.maxP99, s.body)
	}
	lim := defaultLimits()
	f.Fuzz(func(t *testing.T, rawURL, method, headers, rate, concurrency, duration, requestTimeout, blocking, minSuccessRate, maxP99, body string) {
		md := map[string]string{}
		for k, v := range map[string]string{
			"url": rawURL, "method": method, "headers": headers, "rate": rate, "concurrency": concurrency, "duration": duration,
			"requestTimeout": requestTimeout, "blocking": blocking, "minSuccessRate": minSuccessRate, "maxP99": maxP99, "body": body,
		} {
			if v != "" {
				md[k] = v
			}
		}
		spec, err := parseLoadSpec(md, lim)
		if err != nil {
			if errorCode(err) != http.StatusBadRequest {
				t.Fatalf("refused with %d: %v", errorCode(err), err)
			}
			return
		}
		maxDuration := lim.maxLoadDuration
		if spec.blocking {
			maxDuration = maxBlockingLoadDuration
		}
		switch {
		case !(spec.rate >= minLoadRate && spec.rate <= lim.maxLoadRate):
			t.Fatalf("rate %v", spec.rate)
		case time.Duration(float64(time.Second)/spec.rate) <= 0:
			t.Fatalf("rate %v: the ticker interval is not positive", spec.rate)
		case spec.concurrency < 1 || spec.concurrency > maxLoadConcurrency:
			t.Fatalf("concurrency %d", spec.concurrency)
		case spec.duration <= 0 || spec.duration > maxDuration:
			t.Fatalf("duration %v", spec.duration)
		case spec.requestTimeout <= 0 || spec.requestTimeout > maxRequestTimeout:
			t.Fatalf("requestTimeout %v", spec.requestTimeout)
		case spec.maxP99 < 0 || spec.maxP99 > maxRequestTimeout:
			t.Fatalf("maxP99 %v", spec.maxP99)
		case !(spec.minSuccessRate >= 0 && spec.minSuccessRate <= 100):
			t.Fatalf("minSuccessRate %v", spec.minSuccessRate)
		case spec.host == "":
			t.Fatalf("no host in %q", spec.url)
		}

		// The request goes out as specified: framing it and reading it
		// back gives the same method, host and headers.
		req, err := http.NewRequest(spec.method, spec.url, strings.NewReader(spec.body))
		if err != nil {
			t.Fatalf("building the request: %v", err)
		}
		req.Header = spec.header.Clone()
		if h := spec.header.Get("Host"); h != "" {
			req.Host = h
		}
		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			t.Fatalf("framing the request: %v", err)
		}
		br := bufio.NewReader(&wire)
		got, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("reading back %q: %v", wire.String(), err)
		}
		if got.Method != spec.method {
			t.Fatalf("method %q went out as %q", spec.method, got.Method)
		}
		for name := range got.Header {
			if name != "Content-Length" && name != "User-Agent" && spec.header.Values(name) == nil {
				t.Fatalf("header %q went out but was not specified (%q)", name, headers)
			}
		}
		for name, values := range spec.header {
			if http.CanonicalHeaderKey(name) == "Host" {
				if got.Host != spec.header.Get("Host") {
					t.Fatalf("Host %q went out as %q", spec.header.Get("Host"), got.Host)
				}
				continue
			}
			if !reflect.DeepEqual(got.Header.Values(name), values) {
				t.Fatalf("header %q: %q went out as %q", name, values, got.Header.Values(name))
			}
		}
		if rest, err := io.ReadAll(got.Body); err != nil || string(rest) != spec.body {
			t.Fatalf("body %q went out as %q (%v)", spec.body, rest, err)
		}
		if br.Buffered() > 0 || wire.Len() > 0 {
			t.Fatalf("data after the request: a second one was framed")
		}
		if u, err := url.Parse(httpreply.RedactURL(spec.url)); err == nil && u.User != nil {
			if p, _ := u.User.Password(); p != "" {
				t.Fatalf("%q kept its password", u)
			}
		}
	})
}

// FuzzServeHTTP sends any path, token and body to a server with
// per-namespace tokens: it never answers 500 (a panic), and a team-a
// token never succeeds for another namespace. Commands are disabled and
// every load target is refused, so nothing runs.
func FuzzServeHTTP(f *testing.F) {
	dir := f.TempDir()
	for ns, token := range map[string]string{"team-a": "token-a", "team-b": "token-b"} {
		if err := os.WriteFile(filepath.Join(dir, ns), []byte(token), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	cfg, _, err := parseFlags([]string{"--tokens-dir", dir, "--bearer-token", "operator", "--load-allow-host", "fuzz.invalid", "--max-gates", "50"}, io.Discard)
	if err != nil {
		f.Fatal(err)
	}
	cfg.hosts.lookup = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	s := newServer(cfg)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.shutdown(ctx)
	})
	paths := []string{"/", "/gate/open", "/gate/close", "/gate/check", "/gate/approve", "/gate/halt", "/rollback/open", "/rollback/close", "/rollback/check", "/healthz", "/metrics", "/nope"}

	for i, body := range []string{
		`{"name":"a","namespace":"team-a"}`,
		`{"name":"a","namespace":"team-b"}`,
		`{"name":"a","namespace":"team-a","metadata":{"type":"load","url":"http://fuzz.invalid/","blocking":"true"}}`,
		`{"name":"a","namespace":"team-a","metadata":{"type":"load","url":"http://169.254.169.254/"}}`,
		`{"name":"a","namespace":"team-a","metadata":{"type":"bash","cmd":"id"}}`,
		`{"name":"a","namespace":"team-a","metadata":{"cmd":"id"}}`,
		`{"name":"a","namespace":"team-a"}{"name":"a","namespace":"team-b"}`,
		`not json`,
	} {
		for _, token := range []string{"token-a", "token-b", "operator", "", "token-a\x00"} {
			f.Add(uint8(i), token, []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, pathIndex uint8, token string, body []byte) {
		path := paths[int(pathIndex)%len(paths)]
		method := http.MethodPost
		if path == "/healthz" || path == "/metrics" {
			method = http.MethodGet
		}
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s answered %d: %s", method, path, rec.Code, rec.Body.String())
		}
		if rec.Code/100 != 2 || method != http.MethodPost {
			return
		}
		var p payload
		_ = json.NewDecoder(bytes.NewReader(body)).Decode(&p)
		switch strings.TrimSpace(token) {
		case "operator":
		case "token-a":
			if p.Namespace != "team-a" {
				t.Fatalf("team-a's token succeeded (%d) for namespace %q", rec.Code, p.Namespace)
			}
		case "token-b":
			if p.Namespace != "team-b" {
				t.Fatalf("team-b's token succeeded (%d) for namespace %q", rec.Code, p.Namespace)
			}
		default:
			t.Fatalf("token %q succeeded (%d)", token, rec.Code)
		}
		if path == "/" {
			t.Fatalf("a task ran: %d %s", rec.Code, rec.Body.String())
		}
	})
}
