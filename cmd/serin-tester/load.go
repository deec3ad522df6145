package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/serin-dev/serin/pkg/httpreply"
)

// Bounds of a load task, so that a webhook cannot turn the tester into an
// unbounded traffic source. --max-load-rate and --max-load-duration may
// lower (or raise) maxLoadRate and the duration of background loads.
const (
	maxLoadRate = 1000
	// maxLoadRateFlag bounds --max-load-rate, so that the interval
	// between two requests stays a positive time.Duration.
	maxLoadRateFlag = 1e6
	// minLoadRate keeps the interval between two requests (1/rate) well
	// inside a time.Duration: a rate of 1e-10 overflowed it, and the
	// ticker panicked.
	minLoadRate        = 0.01
	maxLoadConcurrency = 100
	// maxBlockingLoadDuration bounds a load that answers its request
	// when it is over, within taskTimeout.
	maxBlockingLoadDuration = 10 * time.Minute
	maxRequestTimeout       = time.Minute
	defaultLoadRate         = 10
	defaultConcurrency      = 1
	defaultLoadDuration     = time.Minute
	defaultRequestTimeout   = 5 * time.Second
	defaultMinSuccessRate   = 99
	// maxResponseRead is how much of each response body is read, so that
	// connections can be reused without buffering huge bodies.
	maxResponseRead = 1 << 20
	// maxLatencySamples bounds the latencies kept for the percentiles:
	// past it, a uniform sample of them is (an hour at 1000/s would be
	// 3.6 million).
	maxLatencySamples = 100_000
	// maxRedirects is how many redirects a request follows, each checked
	// against the host policy.
	maxRedirects = 5
)

// loadSpec is a validated load task.
type loadSpec struct {
	url            string
	host           string // the URL's host name, without port
	method         string
	header         http.Header
	body           string
	rate           float64
	concurrency    int
	duration       time.Duration
	requestTimeout time.Duration
	blocking       bool
	minSuccessRate float64
	maxP99         time.Duration
}

// parseLoadSpec validates a load's metadata against the per-load limits;
// where it may send is the host policy's business.
func parseLoadSpec(md map[string]string, lim limits) (loadSpec, error) {
	spec := loadSpec{
		method:         http.MethodGet,
		body:           md["body"],
		rate:           defaultLoadRate,
		concurrency:    defaultConcurrency,
		minSuccessRate: defaultMinSuccessRate,
	}
	spec.url = md["url"]
	if spec.url == "" {
		return spec, badRequest("metadata.url is required for type load")
	}
	u, err := url.Parse(spec.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" {
		return spec, badRequest(fmt.Sprintf("metadata.url: %q is not an absolute http(s) URL", httpreply.RedactURL(spec.url)))
	}
	if _, err := http.NewRequest(http.MethodGet, spec.url, nil); err != nil {
		return spec, badRequest(fmt.Sprintf("metadata.url: %q is not a URL requests can be sent to", httpreply.RedactURL(spec.url)))
	}
	spec.host = u.Hostname()
	if m := md["method"]; m != "" {
		spec.method = strings.ToUpper(m)
		if !isToken(spec.method) {
			return spec, badRequest(fmt.Sprintf("metadata.method: %q is not an HTTP method", m))
		}
	}
	if spec.header, err = parseHeaders(md["headers"]); err != nil {
		return spec, err
	}
	if v := md["rate"]; v != "" {
		spec.rate, err = strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(spec.rate) || spec.rate < minLoadRate || spec.rate > lim.maxLoadRate {
			return spec, badRequest(fmt.Sprintf("metadata.rate: %q must be a number of requests per second in [%g, %g] (--max-load-rate)", v, minLoadRate, lim.maxLoadRate))
		}
	}
	if v := md["concurrency"]; v != "" {
		spec.concurrency, err = strconv.Atoi(v)
		if err != nil || spec.concurrency < 1 || spec.concurrency > maxLoadConcurrency {
			return spec, badRequest(fmt.Sprintf("metadata.concurrency: %q must be an integer in [1, %d]", v, maxLoadConcurrency))
		}
	}
	if spec.blocking, err = boolValue(md, "blocking"); err != nil {
		return spec, err
	}
	maxDuration := lim.maxLoadDuration
	if spec.blocking {
		maxDuration = min(maxDuration, maxBlockingLoadDuration)
	}
	if spec.duration, err = durationValue(md, "duration", min(defaultLoadDuration, maxDuration), maxDuration); err != nil {
		return spec, fmt.Errorf("%w (--max-load-duration; at most %s for a blocking load)", err, maxBlockingLoadDuration)
	}
	if spec.requestTimeout, err = durationValue(md, "requestTimeout", defaultRequestTimeout, maxRequestTimeout); err != nil {
		return spec, err
	}
	if v := md["minSuccessRate"]; v != "" {
		spec.minSuccessRate, err = strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(spec.minSuccessRate) || spec.minSuccessRate < 0 || spec.minSuccessRate > 100 {
			return spec, badRequest(fmt.Sprintf("metadata.minSuccessRate: %q must be a percentage in [0, 100]", v))
		}
	}
	if spec.maxP99, err = durationValue(md, "maxP99", 0, maxRequestTimeout); err != nil {
		return spec, err
	}
	return spec, nil
}

// framingHeaders are set by the HTTP client, never by a load's metadata:
// they would make the requests malformed or smuggle others.
var framingHeaders = []string{"Connection", "Content-Length", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// parseHeaders reads either a JSON object of strings or "k1:v1,k2:v2".
func parseHeaders(v string) (http.Header, error) {
	h := http.Header{}
	v = strings.TrimSpace(v)
	if v == "" {
		return h, nil
	}
	if strings.HasPrefix(v, "{") {
		var m map[string]string
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return nil, badRequest("metadata.headers: not a JSON object of strings")
		}
		for k, val := range m {
			if err := addHeader(h, k, val); err != nil {
				return nil, err
			}
		}
		return h, nil
	}
	i := 0
	for pair := range strings.SplitSeq(v, ",") {
		i++
		k, val, ok := strings.Cut(pair, ":")
		if !ok {
			// Not quoted: it may be a credential that lost its colon,
			// and the message ends up in Events.
			return nil, badRequest(fmt.Sprintf("metadata.headers: entry %d is not name:value", i))
		}
		if err := addHeader(h, strings.TrimSpace(k), strings.TrimSpace(val)); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func addHeader(h http.Header, name, value string) error {
	if name == "" {
		return badRequest("metadata.headers: empty header name")
	}
	if !isToken(name) {
		return badRequest("metadata.headers: a header name is not a token (letters, digits and !#$%&'*+-.^_`|~)")
	}
	if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return badRequest(fmt.Sprintf("metadata.headers: the value of %s has control characters", name))
	}
	canonical := http.CanonicalHeaderKey(name)
	if slices.Contains(framingHeaders, canonical) {
		return badRequest(fmt.Sprintf("metadata.headers: %s is set by the HTTP client, not by a load", canonical))
	}
	if canonical == "Host" && !validHostHeader(value) {
		return badRequest(fmt.Sprintf("metadata.headers: Host %q is not a host[:port]", value))
	}
	h.Add(name, value)
	return nil
}

// isToken tells whether s is an RFC 9110 token, as methods and header
// names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHostHeader accepts a host name or IP literal and an optional port,
// in ASCII: net/http would send any other host in its punycode form, not
// as validated.
func validHostHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return false
		}
	}
	u, err := url.Parse("http://" + v)
	return err == nil && u.Host == v && u.Hostname() != "" && u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == ""
}

// loadResult is what a load task reports.
type loadResult struct {
	URL             string      `json:"url"`
	Method          string      `json:"method"`
	Duration        string      `json:"duration"`
	Requests        int         `json:"requests"`
	StatusCodes     map[int]int `json:"statusCodes"`
	TransportErrors int         `json:"transportErrors"`
	// Dropped counts the ticks at which every worker was busy, so that
	// the rate asked for could not be sent.
	Dropped int `json:"dropped"`
	// Refused counts the connections the host policy refused (among the
	// transport errors): the host resolved to a refused address.
	Refused int `json:"refused,omitempty"`
	// SuccessRate is the percentage of requests without a transport error
	// or a 5xx status.
	SuccessRate float64 `json:"successRate"`
	P50         string  `json:"p50"`
	P99         string  `json:"p99"`
	P50Seconds  float64 `json:"p50Seconds"`
	P99Seconds  float64 `json:"p99Seconds"`
	// Failures says why a blocking load failed its thresholds.
	Failures []string `json:"failures,omitempty"`
	p99      time.Duration
}

// generateLoad sends requests at spec.rate for spec.duration with at most
// spec.concurrency in flight, connecting only where hosts allows. It
// returns after the duration, once the last requests are done (each
// bounded by spec.requestTimeout), or when ctx ends. A panic in a worker
// is logged and the worker carries on.
func generateLoad(ctx context.Context, spec loadSpec, hosts *hostPolicy, log *slog.Logger, observe func(time.Duration)) loadResult {
	dialer := &net.Dialer{Timeout: spec.requestTimeout, KeepAlive: 30 * time.Second, Control: hosts.control}
	transport := &http.Transport{
		// No proxy: the policy checks the addresses connected to, which
		// behind a proxy would be the proxy's.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: spec.concurrency,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: spec.requestTimeout,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return hosts.allowHost(req.URL.Hostname())
	}}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		seen      int
		res       = loadResult{URL: httpreply.RedactURL(spec.url), Method: spec.method, Duration: spec.duration.String(), StatusCodes: map[int]int{}}
	)
	record := func(code int, latency time.Duration, refused bool) {
		mu.Lock()
		defer mu.Unlock()
		seen++
		// Past maxLatencySamples, a uniform sample (reservoir sampling)
		// is kept for the percentiles.
		if len(latencies) < maxLatencySamples {
			latencies = append(latencies, latency)
		} else if j := rand.IntN(seen); j < maxLatencySamples {
			latencies[j] = latency
		}
		switch {
		case refused:
			res.Refused++
			res.TransportErrors++
		case code == 0:
			res.TransportErrors++
		default:
			res.StatusCodes[code]++
		}
	}
	jobs := make(chan struct{})
	var workers sync.WaitGroup
	for range spec.concurrency {
		workers.Go(func() {
			for range jobs {
				func() {
					defer recoverAndLog(log, "load worker")
					code, latency, err := sendOne(ctx, client, spec)
					observe(latency)
					record(code, latency, errors.Is(err, errDeniedAddress))
				}()
			}
		})
	}

	interval := time.Duration(float64(time.Second) / spec.rate)
	ticker := time.NewTicker(interval)
	deadline := time.NewTimer(spec.duration)
	dropped := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline.C:
			break loop
		case <-ticker.C:
			select {
			case jobs <- struct{}{}:
			default:
				dropped++
			}
		}
	}
	ticker.Stop()
	deadline.Stop()
	close(jobs)
	workers.Wait()

	res.Dropped = dropped
	res.Requests = seen
	ok := 0
	for code, n := range res.StatusCodes {
		if code < 500 {
			ok += n
		}
	}
	if res.Requests > 0 {
		res.SuccessRate = 100 * float64(ok) / float64(res.Requests)
	}
	slices.Sort(latencies)
	p50 := percentile(latencies, 50)
	res.p99 = percentile(latencies, 99)
	res.P50, res.P50Seconds = p50.String(), p50.Seconds()
	res.P99, res.P99Seconds = res.p99.String(), res.p99.Seconds()
	return res
}

// sendOne sends one request and returns its status code (0 on a transport
// error), how long it took, body included, and the transport error.
func sendOne(ctx context.Context, client *http.Client, spec loadSpec) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, spec.requestTimeout)
	defer cancel()
	start := time.Now()
	var body io.Reader
	if spec.body != "" {
		body = strings.NewReader(spec.body)
	}
	req, err := http.NewRequestWithContext(ctx, spec.method, spec.url, body)
	if err != nil {
		return 0, time.Since(start), err
	}
	req.Header = spec.header.Clone()
	if host := spec.header.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	if err != nil {
		return 0, time.Since(start), err
	}
	return resp.StatusCode, time.Since(start), nil
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

// judge fills res.Failures with the thresholds res misses.
func judge(res *loadResult, spec loadSpec) {
	if res.Requests == 0 {
		res.Failures = append(res.Failures, "no request completed")
		return
	}
	if res.SuccessRate < spec.minSuccessRate {
		res.Failures = append(res.Failures, fmt.Sprintf("success rate %.2f%% is below minSuccessRate %.2f%%", res.SuccessRate, spec.minSuccessRate))
	}
	if spec.maxP99 > 0 && res.p99 > spec.maxP99 {
		res.Failures = append(res.Failures, fmt.Sprintf("p99 %s is above maxP99 %s", res.p99, spec.maxP99))
	}
}

// runLoadTask runs a load task: blocking, it answers with the results, 200
// when they meet the thresholds and 500 otherwise; else it answers 202 and
// logs the results when the load is over. While a background load runs,
// the same load for the same canary is not started again: Serin calls its
// webhooks on every analysis tick.
func (s *server) runLoadTask(w http.ResponseWriter, r *http.Request, p payload) error {
	spec, err := parseLoadSpec(p.Metadata, s.cfg.limits)
	if err != nil {
		return err
	}
	if err := s.cfg.hosts.preflight(r.Context(), spec.host); err != nil {
		return forbidden("metadata.url: " + err.Error())
	}
	observe := func(d time.Duration) { s.metrics.loadLatency.Observe(d.Seconds()) }
	if spec.blocking {
		release, err := s.acquireLoad(spec.rate)
		if err != nil {
			return err
		}
		defer release()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.ctx, cancel)()
		res := generateLoad(ctx, spec, s.cfg.hosts, s.log, observe)
		judge(&res, spec)
		code, outcome := http.StatusOK, outcomeSuccess
		if len(res.Failures) > 0 {
			code, outcome = http.StatusInternalServerError, outcomeFailure
		}
		s.metrics.task(typeLoad, outcome)
		s.log.Info("load finished", "canary", p.canaryKey(), "outcome", outcome, "requests", res.Requests, "successRate", res.SuccessRate, "p99", res.P99)
		writeJSON(w, code, res)
		return nil
	}
	key := "load\x00" + p.canaryKey() + "\x00" + canonicalMetadata(p.Metadata)
	if !s.claimKey(key) {
		s.metrics.task(typeLoad, outcomeDuplicate)
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "load already running", "url": httpreply.RedactURL(spec.url)})
		return nil
	}
	release, err := s.acquireLoad(spec.rate)
	if err != nil {
		s.forget(key)
		return err
	}
	forget := sync.OnceFunc(func() { s.forget(key) })
	started := s.startBackground(func() {
		// Deferred too, for a panic; once, so that a later run's key
		// is not forgotten.
		defer release()
		defer forget()
		res := generateLoad(s.ctx, spec, s.cfg.hosts, s.log, observe)
		release()
		forget()
		outcome := outcomeSuccess
		if s.ctx.Err() != nil {
			outcome = outcomeCanceled
		}
		s.metrics.task(typeLoad, outcome)
		s.log.Info("background load finished", "canary", p.canaryKey(), "outcome", outcome, "url", res.URL, "requests", res.Requests,
			"refused", res.Refused, "successRate", res.SuccessRate, "p50", res.P50, "p99", res.P99, "statusCodes", fmt.Sprint(res.StatusCodes))
	})
	if !started {
		release()
		s.forget(key)
		http.Error(w, "tester is shutting down", http.StatusServiceUnavailable)
		return nil
	}
	s.metrics.task(typeLoad, outcomeAccepted)
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "load started", "url": httpreply.RedactURL(spec.url), "duration": spec.duration.String()})
	return nil
}

// canonicalMetadata is the same string for the same metadata, whatever
// the order of its keys.
func canonicalMetadata(md map[string]string) string {
	b, _ := json.Marshal(md) // map keys are sorted
	return string(b)
}
