package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// stubLookup makes the policy's pre-flight resolve every name to addrs.
func stubLookup(ts *testServer, addrs ...string) {
	ts.cfg.hosts.lookup = func(context.Context, string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

// TestLoadsRefuseInternalTargets: by default a load cannot reach the cloud
// metadata service, loopback or the API server, by address or by name.
func TestLoadsRefuseInternalTargets(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
	ts := newFlagServer(t, "--insecure-no-auth")
	stubLookup(ts, "169.254.169.254")
	for _, target := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://169.254.169.254.:80/",
		"http://[fe80::1]/",
		"http://[::ffff:169.254.169.254]/",
		"http://127.0.0.1:8080/",
		"http://127.1.2.3/",
		"http://[::1]/",
		"http://0.0.0.0/",
		"http://[::]/",
		"http://10.96.0.1:443/",
		"https://kubernetes/",
		"https://kubernetes.default/api",
		"https://kubernetes.default.svc/api",
		"https://KUBERNETES.default.svc.cluster.local./api",
		"https://kubernetes.default.svc.corp.example/api",
		"http://metadata.google.internal/computeMetadata/v1/",
	} {
		t.Run(target, func(t *testing.T) {
			g := NewWithT(t)
			code, body := ts.post(t, "/", "a", "ns", map[string]string{"type": "load", "url": target, "blocking": "true", "duration": "1s"})
			g.Expect(code).To(Equal(http.StatusForbidden), body)
			g.Expect(body).To(ContainSubstring("metadata.url"))
			g.Expect(body).To(Or(ContainSubstring("link-local"), ContainSubstring("loopback"), ContainSubstring("API server")))
		})
	}
}

// TestLoadDialCheckDefeatsRebinding: a name that resolved to an allowed
// address when the load was accepted but to loopback when connecting is
// refused at the connection: nothing reaches the loopback server.
func TestLoadDialCheckDefeatsRebinding(t *testing.T) {
	g := NewWithT(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)

	ts := newFlagServer(t, "--insecure-no-auth")
	stubLookup(ts, "203.0.113.7") // what the pre-flight sees
	code, body := ts.post(t, "/", "a", "ns", map[string]string{
		"type": "load", "url": "http://localhost:" + u.Port() + "/", "rate": "50", "duration": "300ms", "blocking": "true", "minSuccessRate": "0",
	})
	g.Expect(code).To(Equal(http.StatusOK), body)
	var res loadResult
	g.Expect(json.Unmarshal([]byte(body), &res)).To(Succeed())
	g.Expect(res.Requests).To(BeNumerically(">", 0))
	g.Expect(res.Refused).To(Equal(res.Requests), "every connection to loopback refused")
	g.Expect(hits.Load()).To(BeZero())
}

// TestLoadRedirectsAreChecked: an allowed target cannot redirect a load to
// a refused host.
func TestLoadRedirectsAreChecked(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	ts := newFlagServer(t, "--insecure-no-auth", "--load-allow-host", "127.0.0.1")
	code, body := ts.post(t, "/", "a", "ns", map[string]string{
		"type": "load", "url": srv.URL, "rate": "20", "duration": "200ms", "blocking": "true", "minSuccessRate": "0",
	})
	g.Expect(code).To(Equal(http.StatusOK), body)
	var res loadResult
	g.Expect(json.Unmarshal([]byte(body), &res)).To(Succeed())
	g.Expect(res.Requests).To(BeNumerically(">", 0))
	g.Expect(res.TransportErrors).To(Equal(res.Requests), "the redirect was not followed")
	g.Expect(res.StatusCodes).To(BeEmpty())
}

func TestLoadAllowHostPatterns(t *testing.T) {
	g := NewWithT(t)
	p, err := newHostPolicy([]string{"app.team-a.svc", "*.example.com", "10.1.0.0/16", "127.0.0.1", "[::1]"})
	g.Expect(err).NotTo(HaveOccurred())
	for _, ok := range []string{"app.team-a.svc", "APP.team-a.svc.", "x.example.com", "a.b.example.com", "10.1.2.3", "127.0.0.1", "[::1]"} {
		g.Expect(p.allowHost(ok)).To(Succeed(), ok)
	}
	for _, bad := range []string{"app.team-b.svc", "example.com", "evilexample.com", "10.2.0.1", "127.0.0.2", "169.254.169.254", "kubernetes.default.svc"} {
		g.Expect(p.allowHost(bad)).NotTo(Succeed(), bad)
	}

	// A name pattern never lifts the refused ranges at connection time;
	// only an IP or CIDR pattern does.
	g.Expect(p.control("tcp", "127.0.0.1:80", nil)).To(Succeed(), "covered by 127.0.0.1")
	g.Expect(p.control("tcp", "[::1]:80", nil)).To(Succeed())
	err = p.control("tcp", "127.0.0.2:80", nil)
	g.Expect(errors.Is(err, errDeniedAddress)).To(BeTrue())
	err = p.control("tcp", "169.254.169.254:80", nil)
	g.Expect(errors.Is(err, errDeniedAddress)).To(BeTrue())
	g.Expect(p.control("tcp", "10.3.0.1:80", nil)).To(Succeed(), "a name pattern's addresses outside the refused ranges")

	named, err := newHostPolicy([]string{"kubernetes.default.svc"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(named.allowHost("kubernetes.default.svc")).To(Succeed(), "the API server only when named exactly")
	g.Expect(named.allowHost("kubernetes.default")).NotTo(Succeed())
}

func TestLoadURLsAreRedacted(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t)
	u, _ := url.Parse(tg.url)
	ts := newFlagServer(t, "--insecure-no-auth", "--load-allow-host", "127.0.0.1")
	target := "http://user:PASSWORD@" + u.Host + "/path?token=SECRET&x=1"
	code, body := ts.post(t, "/", "a", "ns", map[string]string{"type": "load", "url": target, "rate": "20", "duration": "100ms", "blocking": "true", "minSuccessRate": "0"})
	g.Expect(code).To(Equal(http.StatusOK), body)
	code, body2 := ts.post(t, "/", "a", "ns", map[string]string{"type": "load", "url": target, "rate": "20", "duration": "100ms"})
	g.Expect(code).To(Equal(http.StatusAccepted), body2)
	for _, b := range []string{body, body2} {
		g.Expect(b).To(ContainSubstring("/path?"))
		g.Expect(b).NotTo(ContainSubstring("PASSWORD"))
		g.Expect(b).NotTo(ContainSubstring("SECRET"))
	}
	g.Eventually(ts.logs.String).Should(ContainSubstring("background load finished"))
	g.Expect(ts.logs.String()).NotTo(Or(ContainSubstring("PASSWORD"), ContainSubstring("SECRET")))
}

func TestLoadHeadersAndMethodAreValidated(t *testing.T) {
	ts := newFlagServer(t, "--insecure-no-auth", "--load-allow-host", "127.0.0.1")
	for _, md := range []map[string]string{
		{"headers": `{"X-A":"v\r\nInjected: 1"}`},
		{"headers": `{"X A":"v"}`},
		{"headers": "Transfer-Encoding: chunked"},
		{"headers": "content-length: 5"},
		{"headers": `{"Host":"a b"}`},
		{"headers": `{"Host":"a/b"}`},
		{"method": "GET /x"},
		{"method": "G\nET"},
	} {
		t.Run(strings.Join([]string{md["headers"], md["method"]}, " "), func(t *testing.T) {
			g := NewWithT(t)
			md["type"], md["url"] = "load", "http://127.0.0.1:1/"
			code, body := ts.post(t, "/", "a", "ns", md)
			g.Expect(code).To(Equal(http.StatusBadRequest), body)
		})
	}
}

func TestLoadHeaderErrorsQuoteNoValue(t *testing.T) {
	g := NewWithT(t)
	ts := newFlagServer(t, "--insecure-no-auth", "--load-allow-host", "127.0.0.1")
	for _, headers := range []string{"X-A: 1, Authorization Bearer SECRET", `{"Authorization":"SECRET`, `{"Bad SECRET":"v"}`} {
		code, body := ts.post(t, "/", "a", "ns", map[string]string{"type": "load", "url": "http://127.0.0.1:1/", "headers": headers})
		g.Expect(code).To(Equal(http.StatusBadRequest), body)
		g.Expect(body).To(ContainSubstring("metadata.headers"))
		g.Expect(body).NotTo(ContainSubstring("SECRET"))
	}
}

// TestLoadWorkerPanicIsContained: a panic while sending (here in the
// latency observer) is logged, and the load carries on and reports.
func TestLoadWorkerPanicIsContained(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t)
	ts := newFlagServer(t, "--insecure-no-auth", "--load-allow-host", "127.0.0.1")
	spec, err := parseLoadSpec(map[string]string{"url": tg.url, "rate": "100", "duration": "200ms", "concurrency": "2"}, ts.cfg.limits)
	g.Expect(err).NotTo(HaveOccurred())
	var calls atomic.Int64
	res := generateLoad(t.Context(), spec, ts.cfg.hosts, ts.log, func(d time.Duration) {
		if calls.Add(1)%2 == 1 {
			panic("observer bug")
		}
	})
	g.Expect(calls.Load()).To(BeNumerically(">", 2), "the workers kept going")
	g.Expect(res.Requests).To(BeNumerically(">", 0))
	g.Expect(ts.logs.String()).To(ContainSubstring("load worker panicked"))
}
