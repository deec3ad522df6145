package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/pkg/httpreply"
	"github.com/serin-dev/serin/pkg/internal/httpx"
)

// newTestClient is a Client whose backoff is short enough for tests.
func newTestClient() *Client {
	c := NewClient()
	c.firstBackoff, c.maxBackoff = 10*time.Millisecond, 40*time.Millisecond
	return c
}

// countingServer answers every request with handler and counts them.
func countingServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func hookFor(url string) v1beta1.CanaryWebhook {
	return v1beta1.CanaryWebhook{Name: "gate", Type: v1beta1.ConfirmRolloutHook, URL: url}
}

func TestCallSendsPayload(t *testing.T) {
	for _, tc := range []struct {
		name     string
		metadata map[string]string
	}{
		{"with metadata", map[string]string{"type": "bash", "cmd": "curl -sd 'test' http://podinfo-canary/token"}},
		{"without metadata", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			type received struct {
				method, contentType string
				raw                 map[string]json.RawMessage
				payload             Payload
			}
			got := make(chan received, 1)
			srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var rec received
				rec.method, rec.contentType = r.Method, r.Header.Get("Content-Type")
				_ = json.Unmarshal(body, &rec.raw)
				_ = json.Unmarshal(body, &rec.payload)
				got <- rec
			})
			sent := Payload{
				Name:      "podinfo",
				Namespace: "test",
				Phase:     v1beta1.CanaryPhaseProgressing,
				Checksum:  "7d8f9c",
				Metadata:  tc.metadata,
			}

			res := newTestClient().Call(context.Background(), hookFor(srv.URL), sent, nil)

			g.Expect(res.Err).NotTo(HaveOccurred())
			rec := <-got
			g.Expect(rec.method).To(Equal(http.MethodPost))
			g.Expect(rec.contentType).To(Equal("application/json"))
			g.Expect(rec.payload).To(Equal(sent))
			keys := []string{"name", "namespace", "phase", "checksum"}
			if tc.metadata != nil {
				keys = append(keys, "metadata")
			}
			g.Expect(rec.raw).To(HaveLen(len(keys)))
			for _, k := range keys {
				g.Expect(rec.raw).To(HaveKey(k))
			}
		})
	}
}

func TestCallStatus(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
		ok   bool
	}{
		{http.StatusOK, "approved", true},
		{http.StatusAccepted, "", true},
		{http.StatusNonAuthoritativeInfo, "proxy said so", false},
		{http.StatusBadRequest, "  gate closed:\n\tload test failed  ", false},
		{http.StatusInternalServerError, "", false},
	} {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			g := NewWithT(t)
			srv, calls := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, tc.body)
			})

			res := newTestClient().Call(context.Background(), hookFor(srv.URL), Payload{Name: "podinfo"}, nil)

			g.Expect(res.OK()).To(Equal(tc.ok))
			g.Expect(res.StatusCode).To(Equal(tc.code))
			g.Expect(res.Attempts).To(Equal(1))
			g.Expect(calls.Load()).To(BeEquivalentTo(1))
			g.Expect(string(res.Body)).To(Equal(tc.body))
			if tc.ok {
				g.Expect(res.Err).NotTo(HaveOccurred())
				return
			}
			g.Expect(res.Err).To(HaveOccurred())
			g.Expect(res.Err.Error()).To(ContainSubstring(`webhook "gate"`))
			g.Expect(res.Err.Error()).To(ContainSubstring("HTTP %d", tc.code))
			if want := strings.Join(strings.Fields(tc.body), " "); want != "" {
				g.Expect(res.Err.Error()).To(HaveSuffix(": " + want))
			}
		})
	}
}

func TestCallErrorQuotesBodyStart(t *testing.T) {
	g := NewWithT(t)
	body := strings.Repeat("a", httpreply.MaxQuotedBytes-1) + "é" + strings.Repeat("z", 1000)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, body)
	})

	res := newTestClient().Call(context.Background(), hookFor(srv.URL), Payload{}, nil)

	g.Expect(res.Err).To(HaveOccurred())
	msg := res.Err.Error()
	// The cut falls inside "é": the partial rune is dropped, not quoted.
	g.Expect(msg).To(HaveSuffix(": " + strings.Repeat("a", httpreply.MaxQuotedBytes-1) + "…"))
	g.Expect(msg).NotTo(ContainSubstring("z"))
}

func TestCallTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"slow headers", func(w http.ResponseWriter, r *http.Request) {
			// Reading the body lets the server notice the client leaving.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		}},
		{"slow body", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "started")
			w.(http.Flusher).Flush()
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			srv, _ := countingServer(t, tc.handler)
			hook := hookFor(srv.URL)
			hook.Timeout = "1s"

			start := time.Now()
			res := newTestClient().Call(context.Background(), hook, Payload{}, nil)

			g.Expect(time.Since(start)).To(BeNumerically("<", 3*time.Second))
			g.Expect(res.OK()).To(BeFalse())
			g.Expect(res.Attempts).To(Equal(1))
			g.Expect(res.Err.Error()).To(ContainSubstring("timed out after 1s"))
			g.Expect(res.Err).To(MatchError(context.DeadlineExceeded))
		})
	}
}

func TestCallRetries(t *testing.T) {
	for _, tc := range []struct {
		retries, attempts int
		ok                bool
	}{
		{retries: 0, attempts: 1, ok: false},
		{retries: 1, attempts: 2, ok: false},
		{retries: 2, attempts: 3, ok: true},
		{retries: 5, attempts: 3, ok: true},
	} {
		t.Run("", func(t *testing.T) {
			g := NewWithT(t)
			// Fails twice, then succeeds.
			var seen atomic.Int32
			srv, calls := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
				if seen.Add(1) <= 2 {
					http.Error(w, "not yet", http.StatusServiceUnavailable)
				}
			})
			hook := hookFor(srv.URL)
			hook.Retries = tc.retries

			res := newTestClient().Call(context.Background(), hook, Payload{}, nil)

			g.Expect(res.OK()).To(Equal(tc.ok))
			g.Expect(res.Attempts).To(Equal(tc.attempts))
			g.Expect(calls.Load()).To(BeEquivalentTo(tc.attempts))
			if tc.ok {
				g.Expect(res.StatusCode).To(Equal(http.StatusOK))
			} else {
				g.Expect(res.StatusCode).To(Equal(http.StatusServiceUnavailable))
				g.Expect(res.Err.Error()).To(ContainSubstring("after %d attempt(s)", tc.attempts))
				g.Expect(res.Err.Error()).To(ContainSubstring("not yet"))
			}
		})
	}
}

func TestCallCancelledDuringBackoff(t *testing.T) {
	g := NewWithT(t)
	srv, calls := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	})
	c := NewClient()
	c.firstBackoff = time.Minute
	hook := hookFor(srv.URL)
	hook.Retries = 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel)

	start := time.Now()
	res := c.Call(ctx, hook, Payload{}, nil)

	g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
	g.Expect(res.OK()).To(BeFalse())
	g.Expect(res.Attempts).To(Equal(1))
	g.Expect(calls.Load()).To(BeEquivalentTo(1))
	g.Expect(res.Err).To(MatchError(context.Canceled))
	g.Expect(res.Err.Error()).To(ContainSubstring("HTTP 500"))
}

func TestCallRedirects(t *testing.T) {
	t.Run("same host is followed", func(t *testing.T) {
		g := NewWithT(t)
		got := make(chan Payload, 1)
		srv, calls := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/old" {
				http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
				return
			}
			var p Payload
			_ = json.NewDecoder(r.Body).Decode(&p)
			got <- p
		})

		res := newTestClient().Call(context.Background(), hookFor(srv.URL+"/old"), Payload{Name: "podinfo"}, nil)

		g.Expect(res.Err).NotTo(HaveOccurred())
		g.Expect(calls.Load()).To(BeEquivalentTo(2))
		g.Expect(<-got).To(Equal(Payload{Name: "podinfo"}))
	})

	t.Run("another host is refused", func(t *testing.T) {
		g := NewWithT(t)
		other, otherCalls := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
		srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
		})

		res := newTestClient().Call(context.Background(), hookFor(srv.URL), Payload{Metadata: map[string]string{"token": "s3cret"}}, nil)

		g.Expect(res.OK()).To(BeFalse())
		g.Expect(res.Err).To(MatchError(httpx.ErrCrossHostRedirect))
		g.Expect(res.StatusCode).To(Equal(http.StatusTemporaryRedirect))
		g.Expect(otherCalls.Load()).To(BeZero())
	})

	t.Run("too many are refused", func(t *testing.T) {
		g := NewWithT(t)
		srv, calls := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/again", http.StatusTemporaryRedirect)
		})

		res := newTestClient().Call(context.Background(), hookFor(srv.URL), Payload{}, nil)

		g.Expect(res.OK()).To(BeFalse())
		g.Expect(res.Err.Error()).To(ContainSubstring("stopped after %d redirects", maxRedirects))
		g.Expect(calls.Load()).To(BeEquivalentTo(1 + maxRedirects))
	})
}

func TestCallCapsBody(t *testing.T) {
	for _, code := range []int{http.StatusOK, http.StatusInternalServerError} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			g := NewWithT(t)
			chunk := []byte(strings.Repeat("x", 1<<20))
			srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(code)
				for range 10 {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})

			res := newTestClient().Call(context.Background(), hookFor(srv.URL), Payload{}, nil)

			g.Expect(res.StatusCode).To(Equal(code))
			g.Expect(len(res.Body)).To(BeNumerically("<=", maxBodyBytes))
			if code == http.StatusOK {
				g.Expect(res.Err).NotTo(HaveOccurred())
			} else {
				g.Expect(len(res.Err.Error())).To(BeNumerically("<", 2*httpreply.MaxQuotedBytes))
			}
		})
	}
}

func TestCallMisconfigured(t *testing.T) {
	srv, calls := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		name, url, timeout string
	}{
		{"unparsable timeout", srv.URL, "soon"},
		{"zero timeout", srv.URL, "0s"},
		{"negative timeout", srv.URL, "-1s"},
		{"empty url", "", ""},
		{"relative url", "/confirm", ""},
		{"no host", "http://", ""},
		{"other scheme", "ftp://loadtester/", ""},
		{"unparsable url", "http://[::1", ""},
		{"control character", "http://loadtester/\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			hook := hookFor(tc.url)
			hook.Timeout = tc.timeout
			hook.Retries = 3

			res := newTestClient().Call(context.Background(), hook, Payload{}, nil)

			g.Expect(res.OK()).To(BeFalse())
			g.Expect(res.Err.Error()).To(HavePrefix(`webhook "gate": invalid`))
			g.Expect(res.Attempts).To(BeZero())
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}

func TestParseTimeoutDefault(t *testing.T) {
	d, err := parseTimeout("")
	if err != nil || d != DefaultTimeout {
		t.Errorf(`parseTimeout("") = %v, %v; want %v`, d, err, DefaultTimeout)
	}
}

func TestBackoff(t *testing.T) {
	c := NewClient()
	var got []time.Duration
	for failed := 1; failed <= 6; failed++ {
		got = append(got, c.backoff(failed))
	}
	NewWithT(t).Expect(got).To(Equal([]time.Duration{
		time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second,
	}))
}

// TestCallReusesConnections checks that calls share the client's transport
// rather than dialing anew each time.
func TestCallReusesConnections(t *testing.T) {
	g := NewWithT(t)
	var dials atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c := newTestClient()
	for range 3 {
		g.Expect(c.Call(context.Background(), hookFor(srv.URL), Payload{}, nil).Err).NotTo(HaveOccurred())
	}
	g.Expect(dials.Load()).To(BeEquivalentTo(1))
}

func TestEventPayload(t *testing.T) {
	g := NewWithT(t)
	metadata := map[string]string{"channel": "#releases", EventTypeKey: "spoofed"}

	p := EventPayload("podinfo", "test", v1beta1.CanaryPhaseFailed, "abc", "Warning", "Rolling back podinfo.test", metadata)

	g.Expect(p).To(Equal(Payload{
		Name:      "podinfo",
		Namespace: "test",
		Phase:     v1beta1.CanaryPhaseFailed,
		Checksum:  "abc",
		Metadata: map[string]string{
			"channel":      "#releases",
			"eventMessage": "Rolling back podinfo.test",
			"eventType":    "Warning",
		},
	}))
	g.Expect(metadata).To(Equal(map[string]string{"channel": "#releases", EventTypeKey: "spoofed"}))

	g.Expect(EventPayload("podinfo", "test", "", "", "Normal", "msg", nil).Metadata).To(Equal(map[string]string{
		"eventMessage": "msg",
		"eventType":    "Normal",
	}))
}

// TestCallErrorHidesURLSecrets: a webhook URL may carry a token in its
// userinfo or query; the error of a call that got no answer, which reaches
// Events and alerts, does not quote them.
func TestCallErrorHidesURLSecrets(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := srv.Listener.Addr().String()
	srv.Close() // nothing listens: connection refused

	res := newTestClient().Call(context.Background(), hookFor("http://bot:pa55word@"+addr+"/hook?token=t0ken&team=a"), Payload{}, nil)
	g.Expect(res.OK()).To(BeFalse())
	g.Expect(res.StatusCode).To(BeZero())
	g.Expect(res.Err.Error()).To(ContainSubstring("connection refused"))
	g.Expect(res.Err.Error()).To(ContainSubstring(addr+"/hook"), "the host and path still say which webhook")
	g.Expect(res.Err.Error()).NotTo(Or(ContainSubstring("pa55word"), ContainSubstring("t0ken")))
}

func TestCallSendsTheHooksCredentials(t *testing.T) {
	g := NewWithT(t)
	got := make(chan http.Header, 1)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	header, err := AuthHeader(map[string][]byte{
		"token":            []byte("t0ken\n"),
		"header.X-Api-Key": []byte("k3y"),
		"ca.crt":           []byte("not a header"),
	})
	g.Expect(err).NotTo(HaveOccurred())

	res := newTestClient().Call(context.Background(), hookFor(srv.URL), Payload{}, header)

	g.Expect(res.Err).NotTo(HaveOccurred())
	sent := <-got
	g.Expect(sent.Get("Authorization")).To(Equal("Bearer t0ken"))
	g.Expect(sent.Get("X-Api-Key")).To(Equal("k3y"))
	g.Expect(sent.Get("Content-Type")).To(Equal("application/json"))
	g.Expect(sent.Values("Ca.crt")).To(BeEmpty())
}

func TestAuthHeaderRefusals(t *testing.T) {
	for name, data := range map[string]map[string][]byte{
		"no usable key":       {"password": []byte("s3cret")},
		"bad header name":     {"header.X Bad": []byte("s3cret")},
		"header injection":    {"token": []byte("s3cret\r\nX-Evil: 1")},
		"token set twice":     {"token": []byte("s3cret-1"), "header.Authorization": []byte("s3cret-2")},
		"empty header prefix": {"header.": []byte("s3cret")},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := AuthHeader(data)
			g.Expect(err).To(HaveOccurred())
			for _, v := range data {
				g.Expect(err.Error()).NotTo(ContainSubstring(string(v)))
			}
		})
	}
}

// TestCallErrorHidesCredentials: a refusal that echoes the hook's
// credentials is quoted without them, and so is a success that does.
func TestCallErrorHidesCredentials(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusOK} {
		t.Run(http.StatusText(status), func(t *testing.T) { testCallHidesCredentials(t, status) })
	}
}

func testCallHidesCredentials(t *testing.T, status int) {
	g := NewWithT(t)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "bad token "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+", key "+r.Header.Get("X-Api-Key"))
	})
	header, err := AuthHeader(map[string][]byte{TokenKey: []byte("t0k3n-s3cret"), HeaderKeyPrefix + "X-Api-Key": []byte("k3y-s3cret")})
	g.Expect(err).NotTo(HaveOccurred())

	res := newTestClient().Call(context.Background(), hookFor(srv.URL), Payload{}, header)

	g.Expect(string(res.Body)).To(Equal("bad token [redacted], key [redacted]"))
	if status != http.StatusOK {
		g.Expect(res.Err).To(MatchError(ContainSubstring("HTTP 401 Unauthorized: bad token [redacted], key [redacted]")))
		g.Expect(res.Err.Error()).NotTo(ContainSubstring("s3cret"))
	}
}

// TestCallDisableTLS: a hook with a self-signed certificate fails
// verification unless it sets disableTLS, as in Flagger.
func TestCallDisableTLS(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	c := newTestClient()
	hook := hookFor(srv.URL)

	res := c.Call(t.Context(), hook, Payload{Name: "app"}, nil)
	g.Expect(res.Err).To(MatchError(ContainSubstring("certificate")))

	hook.DisableTLS = true
	res = c.Call(t.Context(), hook, Payload{Name: "app"}, nil)
	g.Expect(res.Err).NotTo(HaveOccurred())
	g.Expect(res.StatusCode).To(Equal(http.StatusOK))
}
