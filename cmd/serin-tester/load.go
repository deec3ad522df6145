package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds of a load task, so that a webhook cannot turn the tester into an
// unbounded traffic source.
const (
	maxLoadRate = 1000
	// minLoadRate keeps the interval between two requests (1/rate) well
	// inside a time.Duration: a rate of 1e-10 overflowed it, and the
	// ticker panicked.
	minLoadRate           = 0.01
	maxLoadConcurrency    = 100
	maxLoadDuration       = 10 * time.Minute
	maxRequestTimeout     = time.Minute
	defaultLoadRate       = 10
	defaultConcurrency    = 1
	defaultLoadDuration   = time.Minute
	defaultRequestTimeout = 5 * time.Second
	defaultMinSuccessRate = 99
	// maxResponseRead is how much of each response body is read, so that
	// connections can be reused without buffering huge bodies.
	maxResponseRead = 1 << 20
)

// loadSpec is a validated load task.
type loadSpec struct {
	url            string
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

func parseLoadSpec(md map[string]string) (loadSpec, error) {
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
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return spec, badRequest(fmt.Sprintf("metadata.url: %q is not an absolute http(s) URL", spec.url))
	}
	if m := md["method"]; m != "" {
		spec.method = strings.ToUpper(m)
	}
	if spec.header, err = parseHeaders(md["headers"]); err != nil {
		return spec, err
	}
	if v := md["rate"]; v != "" {
		spec.rate, err = strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(spec.rate) || spec.rate < minLoadRate || spec.rate > maxLoadRate {
			return spec, badRequest(fmt.Sprintf("metadata.rate: %q must be a number of requests per second in [%g, %d]", v, minLoadRate, maxLoadRate))
		}
	}
	if v := md["concurrency"]; v != "" {
		spec.concurrency, err = strconv.Atoi(v)
		if err != nil || spec.concurrency < 1 || spec.concurrency > maxLoadConcurrency {
			return spec, badRequest(fmt.Sprintf("metadata.concurrency: %q must be an integer in [1, %d]", v, maxLoadConcurrency))
		}
	}
	if spec.duration, err = durationValue(md, "duration", defaultLoadDuration, maxLoadDuration); err != nil {
		return spec, err
	}
	if spec.requestTimeout, err = durationValue(md, "requestTimeout", defaultRequestTimeout, maxRequestTimeout); err != nil {
		return spec, err
	}
	if spec.blocking, err = boolValue(md, "blocking"); err != nil {
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
			return nil, badRequest("metadata.headers: not a JSON object of strings: " + err.Error())
		}
		for k, val := range m {
			if k == "" {
				return nil, badRequest("metadata.headers: empty header name")
			}
			h.Add(k, val)
		}
		return h, nil
	}
	for pair := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(pair, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, badRequest(fmt.Sprintf("metadata.headers: %q is not name:value", strings.TrimSpace(pair)))
		}
		h.Add(k, strings.TrimSpace(val))
	}
	return h, nil
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
// spec.concurrency in flight. It returns after the duration, once the last
// requests are done (each bounded by spec.requestTimeout), or when ctx ends.
func generateLoad(ctx context.Context, spec loadSpec, observe func(time.Duration)) loadResult {
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: spec.concurrency,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		res       = loadResult{URL: spec.url, Method: spec.method, Duration: spec.duration.String(), StatusCodes: map[int]int{}}
	)
	jobs := make(chan struct{})
	var workers sync.WaitGroup
	for range spec.concurrency {
		workers.Go(func() {
			for range jobs {
				code, latency := sendOne(ctx, client, spec)
				observe(latency)
				mu.Lock()
				latencies = append(latencies, latency)
				if code == 0 {
					res.TransportErrors++
				} else {
					res.StatusCodes[code]++
				}
				mu.Unlock()
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
	res.Requests = len(latencies)
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
// error) and how long it took, body included.
func sendOne(ctx context.Context, client *http.Client, spec loadSpec) (int, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, spec.requestTimeout)
	defer cancel()
	start := time.Now()
	var body io.Reader
	if spec.body != "" {
		body = strings.NewReader(spec.body)
	}
	req, err := http.NewRequestWithContext(ctx, spec.method, spec.url, body)
	if err != nil {
		return 0, time.Since(start)
	}
	req.Header = spec.header.Clone()
	if host := spec.header.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(start)
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	if err != nil {
		return 0, time.Since(start)
	}
	return resp.StatusCode, time.Since(start)
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
// logs the results when the load is over.
func (s *server) runLoadTask(w http.ResponseWriter, r *http.Request, p payload) error {
	spec, err := parseLoadSpec(p.Metadata)
	if err != nil {
		return err
	}
	observe := func(d time.Duration) { s.metrics.loadLatency.Observe(d.Seconds()) }
	if spec.blocking {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.ctx, cancel)()
		res := generateLoad(ctx, spec, observe)
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
	started := s.startBackground(func() {
		res := generateLoad(s.ctx, spec, observe)
		outcome := outcomeSuccess
		if s.ctx.Err() != nil {
			outcome = outcomeCanceled
		}
		s.metrics.task(typeLoad, outcome)
		s.log.Info("background load finished", "canary", p.canaryKey(), "outcome", outcome, "requests", res.Requests,
			"successRate", res.SuccessRate, "p50", res.P50, "p99", res.P99, "statusCodes", fmt.Sprint(res.StatusCodes))
	})
	if !started {
		http.Error(w, "tester is shutting down", http.StatusServiceUnavailable)
		return nil
	}
	s.metrics.task(typeLoad, outcomeAccepted)
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "load started", "url": spec.url, "duration": spec.duration.String()})
	return nil
}
