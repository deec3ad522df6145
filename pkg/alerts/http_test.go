package alerts

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestProxyIsUsed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    func(proxy string) Config
		secret func(proxy string) map[string][]byte
	}{
		{"config", func(proxy string) Config {
			return Config{Type: TypeSlack, Address: "http://hooks.example.invalid/services/T/B/X", Proxy: proxy}
		}, nil},
		{"secret", nil, func(proxy string) map[string][]byte {
			return map[string][]byte{"address": []byte("http://hooks.example.invalid/services/T/B/X"), "proxy": []byte(proxy)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			type proxied struct{ url, auth string }
			got := make(chan proxied, 1)
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				got <- proxied{r.URL.String(), r.Header.Get("Proxy-Authorization")}
			}))
			t.Cleanup(proxy.Close)
			proxyURL, _ := url.Parse(proxy.URL)
			proxyURL.User = url.UserPassword("u", "p")

			var cfg Config
			if tc.cfg != nil {
				cfg = tc.cfg(proxyURL.String())
			} else {
				var err error
				cfg, err = ConfigFrom(provider("slack", "", "", true), tc.secret(proxyURL.String()))
				g.Expect(err).NotTo(HaveOccurred())
			}
			n, err := New(cfg)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Notify(context.Background(), failedMessage())).To(Succeed())
			var p proxied
			g.Expect(got).To(Receive(&p))
			// A proxy gets the target in absolute form.
			g.Expect(p.url).To(Equal("http://hooks.example.invalid/services/T/B/X"))
			g.Expect(p.auth).To(HavePrefix("Basic "))
		})
	}
}

func TestTimeout(t *testing.T) {
	g := NewWithT(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first, so that Close does not wait

	n, err := New(Config{Type: TypeSlack, Address: srv.URL + "/services/T/B/s3cret", Timeout: 100 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	err = n.Notify(context.Background(), failedMessage())
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(err.Error()).To(ContainSubstring("timed out after 100ms"))
	g.Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
	g.Expect(err.Error()).NotTo(ContainSubstring(srv.URL))
}

func TestCallerCancellation(t *testing.T) {
	g := NewWithT(t)
	srv, _ := receiver(t, http.StatusOK)
	n, err := New(Config{Type: TypeGeneric, Address: srv.URL})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = n.Notify(ctx, failedMessage())
	g.Expect(err).To(MatchError(context.Canceled))
	g.Expect(err.Error()).NotTo(ContainSubstring("timed out"))
}

// TestRefusalHidesSecrets checks that a refusal is an error that names the
// status and host but none of the URL's secret parts, nor the token, even
// when the service echoes them.
func TestRefusalHidesSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "invalid webhook http://"+r.Host+r.URL.RequestURI()+" auth="+r.Header.Get("Authorization")+" "+strings.Repeat("x", 300))
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	for typ := range services {
		t.Run(string(typ), func(t *testing.T) {
			g := NewWithT(t)
			address := srv.URL + "/hooks/id-123/tok-s3cret?key=k3y"
			n, err := New(Config{Type: typ, Address: address, Token: "bearer-s3cret"})
			g.Expect(err).NotTo(HaveOccurred())
			err = n.Notify(context.Background(), failedMessage())
			g.Expect(err).To(HaveOccurred())
			msg := err.Error()
			g.Expect(msg).To(ContainSubstring("HTTP 403 Forbidden"))
			g.Expect(msg).To(ContainSubstring(string(typ) + " alert to " + host))
			g.Expect(msg).To(ContainSubstring("[redacted]"))
			for _, secret := range []string{"s3cret", "k3y", "id-123", address} {
				g.Expect(msg).NotTo(ContainSubstring(secret))
			}
			g.Expect(len(msg)).To(BeNumerically("<", 400), "the quoted body is capped")
		})
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	g := NewWithT(t)
	elsewhere, got := receiver(t, http.StatusOK)
	srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/collect", http.StatusTemporaryRedirect))
	t.Cleanup(srv.Close)

	n, err := New(Config{Type: TypeGeneric, Address: srv.URL + "/hook", Token: "s3cret"})
	g.Expect(err).NotTo(HaveOccurred())
	err = n.Notify(context.Background(), failedMessage())
	g.Expect(err).To(MatchError(ContainSubstring("HTTP 307 Temporary Redirect (redirects are not followed)")))
	g.Consistently(got, "50ms").ShouldNot(Receive())
}

func TestSuccessStatuses(t *testing.T) {
	for _, code := range []int{http.StatusOK, http.StatusAccepted, http.StatusNoContent} {
		srv, _ := receiver(t, code)
		n, err := New(Config{Type: TypeMSTeams, Address: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(context.Background(), failedMessage()); err != nil {
			t.Errorf("status %d: %v", code, err)
		}
	}
}

func TestConnectionErrorHidesURL(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	address := srv.URL + "/services/T/B/s3cret"
	srv.Close() // nothing listens any more
	n, err := New(Config{Type: TypeSlack, Address: address})
	g.Expect(err).NotTo(HaveOccurred())
	err = n.Notify(context.Background(), failedMessage())
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
	var uerr *url.Error
	g.Expect(errors.As(err, &uerr)).To(BeFalse(), "url.Error quotes the URL")
}

// TestNotifiersShareConnections: the controller builds a Notifier per
// event; those to one receiver share a connection rather than dialing for
// each event.
func TestNotifiersShareConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	const events = 50
	for range events {
		n, err := New(Config{Type: TypeSlack, Address: srv.URL + "/services/T/B/X"})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(context.Background(), failedMessage()); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n > 2 {
		t.Errorf("%d events opened %d connections, want one or two", events, n)
	}
}
