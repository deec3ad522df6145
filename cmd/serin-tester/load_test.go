package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// target is an HTTP server that fails every tenth request with a 500 and
// counts what it served, so that a load report can be checked exactly.
type target struct {
	mu      sync.Mutex
	total   int
	failed  int
	headers []http.Header
	methods []string
	url     string
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.mu.Lock()
		tg.total++
		n := tg.total
		tg.headers = append(tg.headers, r.Header.Clone())
		tg.methods = append(tg.methods, r.Method)
		if n%10 == 0 {
			tg.failed++
		}
		tg.mu.Unlock()
		if n%10 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("fine"))
	}))
	t.Cleanup(srv.Close)
	tg.url = srv.URL
	return tg
}

func (tg *target) counts() (total, failed int) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.total, tg.failed
}

func TestBlockingLoadReportsWhatTheTargetSaw(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	tg := newTarget(t)

	start := time.Now()
	code, body := ts.post(t, "/", "a", "ns", map[string]string{
		"type": "load", "url": tg.url, "method": "post", "rate": "200", "concurrency": "4", "duration": "500ms",
		"headers": "X-A: 1, X-B:two", "body": "{}", "blocking": "true", "minSuccessRate": "85",
	})
	g.Expect(time.Since(start)).To(BeNumerically("<", 3*time.Second), "the load stops at its duration")
	g.Expect(code).To(Equal(http.StatusOK), body)

	var res loadResult
	g.Expect(json.Unmarshal([]byte(body), &res)).To(Succeed())
	total, failed := tg.counts()
	g.Expect(total).To(BeNumerically(">=", 25), "about rate × duration requests")
	g.Expect(total).To(BeNumerically("<=", 101))
	g.Expect(res.Requests).To(Equal(total))
	g.Expect(res.StatusCodes).To(Equal(map[int]int{200: total - failed, 500: failed}))
	g.Expect(res.TransportErrors).To(BeZero())
	g.Expect(res.SuccessRate).To(BeNumerically("~", 100*float64(total-failed)/float64(total), 1e-9))
	g.Expect(res.P50Seconds).To(BeNumerically(">", 0))
	g.Expect(res.P99Seconds).To(BeNumerically(">=", res.P50Seconds))
	g.Expect(res.Failures).To(BeEmpty())

	tg.mu.Lock()
	g.Expect(tg.methods[0]).To(Equal(http.MethodPost))
	g.Expect(tg.headers[0].Get("X-A")).To(Equal("1"))
	g.Expect(tg.headers[0].Get("X-B")).To(Equal("two"))
	tg.mu.Unlock()

	_, body = ts.do(t, http.MethodGet, "/metrics", nil)
	g.Expect(body).To(ContainSubstring(`serin_tester_load_request_duration_seconds_count ` + strconv.Itoa(total)))
	g.Expect(ts.taskCount(t, typeLoad, outcomeSuccess)).To(Equal(1.0))
}

func TestBlockingLoadFailsItsThresholds(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	tg := newTarget(t)

	code, body := ts.post(t, "/", "a", "ns", map[string]string{
		"type": "load", "url": tg.url, "rate": "100", "concurrency": "4", "duration": "500ms", "blocking": "true", "maxP99": "1ns",
	})
	g.Expect(code).To(Equal(http.StatusInternalServerError))
	var res loadResult
	g.Expect(json.Unmarshal([]byte(body), &res)).To(Succeed())
	g.Expect(res.Requests).To(BeNumerically(">=", 10), "every tenth request fails, so the default 99% is missed")
	g.Expect(res.Failures).To(ConsistOf(
		ContainSubstring("below minSuccessRate 99.00%"),
		ContainSubstring("above maxP99 1ns"),
	))
	g.Expect(ts.taskCount(t, typeLoad, outcomeFailure)).To(Equal(1.0))
}

func TestLoadCountsTransportErrors(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	code, body := ts.post(t, "/", "a", "ns", map[string]string{
		"type": "load", "url": closed.URL, "rate": "50", "duration": "200ms", "blocking": "true", "minSuccessRate": "0",
	})
	g.Expect(code).To(Equal(http.StatusOK), "a 0% threshold passes")
	var res loadResult
	g.Expect(json.Unmarshal([]byte(body), &res)).To(Succeed())
	g.Expect(res.Requests).To(BeNumerically(">", 0))
	g.Expect(res.TransportErrors).To(Equal(res.Requests))
	g.Expect(res.SuccessRate).To(BeZero())
}

func TestBackgroundLoadAnswersAtOnceAndStopsOnShutdown(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	tg := newTarget(t)

	start := time.Now()
	code, _ := ts.post(t, "/", "a", "ns", map[string]string{"type": "load", "url": tg.url, "rate": "50", "duration": "10m"})
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(time.Since(start)).To(BeNumerically("<", time.Second))
	g.Eventually(func() int { n, _ := tg.counts(); return n }).WithTimeout(2 * time.Second).Should(BeNumerically(">", 0))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	g.Expect(ts.shutdown(ctx)).To(Succeed())
	g.Expect(ts.taskCount(t, typeLoad, outcomeCanceled)).To(Equal(1.0))
	n, _ := tg.counts()
	g.Consistently(func() int { n2, _ := tg.counts(); return n2 }).WithTimeout(200 * time.Millisecond).Should(Equal(n))
}

func TestLoadBoundsAndBadValues(t *testing.T) {
	ts := newTestServer(t, ".*", "")
	cases := []struct {
		name     string
		md       map[string]string
		wantText string
	}{
		{"no url", map[string]string{}, "metadata.url is required"},
		{"relative url", map[string]string{"url": "/x"}, "metadata.url"},
		{"ftp url", map[string]string{"url": "ftp://h/x"}, "metadata.url"},
		{"rate too high", map[string]string{"url": "http://h", "rate": "1001"}, "metadata.rate"},
		{"rate zero", map[string]string{"url": "http://h", "rate": "0"}, "metadata.rate"},
		{"rate not a number", map[string]string{"url": "http://h", "rate": "fast"}, "metadata.rate"},
		{"rate so low that its interval overflows", map[string]string{"url": "http://h", "rate": "1e-10"}, "metadata.rate"},
		{"rate negative", map[string]string{"url": "http://h", "rate": "-5"}, "metadata.rate"},
		{"concurrency too high", map[string]string{"url": "http://h", "concurrency": "101"}, "metadata.concurrency"},
		{"concurrency zero", map[string]string{"url": "http://h", "concurrency": "0"}, "metadata.concurrency"},
		{"duration too long", map[string]string{"url": "http://127.0.0.1", "duration": "2h"}, "metadata.duration"},
		{"blocking duration too long", map[string]string{"url": "http://127.0.0.1", "duration": "11m", "blocking": "true"}, "metadata.duration"},
		{"duration not a duration", map[string]string{"url": "http://h", "duration": "10"}, "metadata.duration"},
		{"request timeout too long", map[string]string{"url": "http://h", "requestTimeout": "2m"}, "metadata.requestTimeout"},
		{"min success rate above 100", map[string]string{"url": "http://h", "minSuccessRate": "101"}, "metadata.minSuccessRate"},
		{"bad maxP99", map[string]string{"url": "http://h", "maxP99": "x"}, "metadata.maxP99"},
		{"bad blocking", map[string]string{"url": "http://h", "blocking": "1"}, "metadata.blocking"},
		{"bad headers", map[string]string{"url": "http://h", "headers": "novalue"}, "metadata.headers"},
		{"bad JSON headers", map[string]string{"url": "http://h", "headers": `{"a":1}`}, "metadata.headers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tc.md["type"] = "load"
			code, body := ts.post(t, "/", "a", "ns", tc.md)
			g.Expect(code).To(Equal(http.StatusBadRequest))
			g.Expect(body).To(ContainSubstring(tc.wantText))
		})
	}
}

func TestParseHeaders(t *testing.T) {
	g := NewWithT(t)
	h, err := parseHeaders(`{"Authorization":"Bearer x,y","Host":"app.example"}`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.Get("Authorization")).To(Equal("Bearer x,y"))
	g.Expect(h.Get("Host")).To(Equal("app.example"))

	h, err = parseHeaders("k1:v1, k2 : v:2")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h.Get("K1")).To(Equal("v1"))
	g.Expect(h.Get("K2")).To(Equal("v:2"))

	// net/http would send a non-ASCII host as punycode, not as checked.
	for _, host := range []string{"\xa2", "bücher.example", "app example"} {
		_, err = parseHeaders(`{"Host":"` + host + `"}`)
		g.Expect(err).To(MatchError(ContainSubstring("is not a host[:port]")), host)
	}
}

func TestPercentile(t *testing.T) {
	g := NewWithT(t)
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	g.Expect(percentile(d, 50)).To(Equal(time.Duration(50)))
	g.Expect(percentile(d, 99)).To(Equal(time.Duration(99)))
	g.Expect(percentile(d[:1], 99)).To(Equal(time.Duration(1)))
	g.Expect(percentile(nil, 99)).To(BeZero())
}
