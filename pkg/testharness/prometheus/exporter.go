package prometheus

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// istioBuckets are the bucket bounds of Istio's
// istio_request_duration_milliseconds histogram, which Envoy's
// envoy_cluster_upstream_rq_time shares.
var istioBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// nginxBuckets are ingress-nginx's response duration buckets, in seconds.
var nginxBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// statusCodes are the response codes of successful and failed requests.
var statusCodes = [2]string{"200", "500"}

// family is the shape of one data plane's series: a request counter by
// response code plus a duration histogram over all codes, or (requests
// nil) a duration histogram by status, as application instrumentation has.
type family struct {
	requests *prometheus.Desc // the last label is the response code
	duration *prometheus.Desc // the last label is the status when requests is nil
	bounds   []float64
	unit     time.Duration // of the duration histogram
}

var (
	istioFamily = &family{
		requests: prometheus.NewDesc("istio_requests_total",
			"Requests received by the workload, as reported by Istio.",
			[]string{"destination_workload", "destination_workload_namespace", "response_code"}, prometheus.Labels{"reporter": "destination"}),
		duration: prometheus.NewDesc("istio_request_duration_milliseconds",
			"Request duration in milliseconds, as reported by Istio.",
			[]string{"destination_workload", "destination_workload_namespace"}, prometheus.Labels{"reporter": "destination"}),
		bounds: istioBuckets,
		unit:   time.Millisecond,
	}
	contourFamily = &family{
		requests: prometheus.NewDesc("envoy_cluster_upstream_rq",
			"Requests sent to the upstream cluster, as reported by Contour's Envoy.",
			[]string{"envoy_cluster_name", "envoy_response_code"}, nil),
		duration: prometheus.NewDesc("envoy_cluster_upstream_rq_time",
			"Upstream request time in milliseconds, as reported by Contour's Envoy.",
			[]string{"envoy_cluster_name"}, nil),
		bounds: istioBuckets,
		unit:   time.Millisecond,
	}
	nginxFamily = &family{
		requests: prometheus.NewDesc("nginx_ingress_controller_requests",
			"Requests served through the Ingress, as reported by ingress-nginx.",
			[]string{"namespace", "ingress", "canary", "status"}, nil),
		duration: prometheus.NewDesc("nginx_ingress_controller_response_duration_seconds",
			"Upstream response time in seconds, as reported by ingress-nginx.",
			[]string{"namespace", "ingress", "canary"}, nil),
		bounds: nginxBuckets,
		unit:   time.Second,
	}
	appFamily = &family{
		duration: prometheus.NewDesc("http_request_duration_seconds",
			"Request duration in seconds, as reported by the application.",
			[]string{"namespace", "pod", "status"}, nil),
		bounds: prometheus.DefBuckets,
		unit:   time.Second,
	}
	// flagFamily is OpenTelemetry's HTTP server duration histogram with
	// OpenFeature's evaluation attributes, as an application instrumented
	// with both exports it through Prometheus (dots become underscores).
	flagFamily = &family{
		duration: prometheus.NewDesc("http_server_request_duration_seconds",
			"Request duration in seconds by the flag variant the request was served with, as reported by the application.",
			[]string{"namespace", "feature_flag_key", "feature_flag_variant", "http_response_status_code"}, nil),
		bounds: prometheus.DefBuckets,
		unit:   time.Second,
	}
	families = []*family{istioFamily, contourFamily, nginxFamily, appFamily, flagFamily}
)

// Exporter serves synthetic data-plane and application telemetry at
// /metrics on a loopback port. Counters are computed at scrape time from the
// declared request rates, so rate() over them yields the declared rates.
// Close it when done.
type Exporter struct {
	*httptest.Server

	mu     sync.Mutex
	series map[seriesKey]*traffic
}

// seriesKey is one family's series, by its label values (without the
// response code), joined with labelSep.
type seriesKey struct {
	family *family
	labels string
}

const labelSep = "\xff"

func key(f *family, labels ...string) seriesKey {
	return seriesKey{f, strings.Join(labels, labelSep)}
}

// NewExporter starts an Exporter with no series.
func NewExporter() *Exporter {
	e := &Exporter{series: map[seriesKey]*traffic{}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{e})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	e.Server = httptest.NewServer(mux)
	return e
}

// Addr is the host:port to scrape.
func (e *Exporter) Addr() string {
	return e.Listener.Addr().String()
}

// SetIstioWorkload declares the steady traffic one workload receives, as
// Istio's sidecars report it (reporter="destination"): rps requests per
// second, of which the successRatio share answer 200 and the rest 500, all
// taking latency. Declaring a workload again changes its traffic from now
// on; its counters keep growing from their current values.
func (e *Exporter) SetIstioWorkload(namespace, workload string, rps, successRatio float64, latency time.Duration) {
	e.set(key(istioFamily, workload, namespace), rps, successRatio, latency)
}

// SetContourCluster declares the steady traffic Contour's Envoy sends to
// one upstream cluster, named <namespace>_<service>_<port>.
func (e *Exporter) SetContourCluster(cluster string, rps, successRatio float64, latency time.Duration) {
	e.set(key(contourFamily, cluster), rps, successRatio, latency)
}

// SetNGINXIngress declares the steady traffic ingress-nginx serves through
// one Ingress; canary is empty for the main backend and names the canary
// upstream (<namespace>-<service>-<port>) for requests it sent there.
func (e *Exporter) SetNGINXIngress(namespace, ingress, canary string, rps, successRatio float64, latency time.Duration) {
	e.set(key(nginxFamily, namespace, ingress, canary), rps, successRatio, latency)
}

// SetAppPods declares the steady traffic an application's pods receive, as
// its own http_request_duration_seconds histogram reports it: rps requests
// per second in total, split evenly across pods, of which the successRatio
// share answer 200 and the rest 500, all taking latency. Pod names should
// look like <workload>-<hash>-<suffix> for Remove and Flagger's queries to
// match them. Declaring a pod again changes its traffic from now on.
func (e *Exporter) SetAppPods(namespace string, pods []string, rps, successRatio float64, latency time.Duration) {
	if len(pods) == 0 {
		panic("prometheus: SetAppPods needs at least one pod")
	}
	for _, pod := range pods {
		e.set(key(appFamily, namespace, pod), rps/float64(len(pods)), successRatio, latency)
	}
}

// SetFlagVariant declares the steady traffic an application serves with one
// variant of one flag: rps requests per second, of which the successRatio
// share answer 200 and the rest 500, all taking latency. A variant no
// longer served keeps its series at rps 0, as a counter would.
func (e *Exporter) SetFlagVariant(namespace, flag, variant string, rps, successRatio float64, latency time.Duration) {
	e.set(key(flagFamily, namespace, flag, variant), rps, successRatio, latency)
}

// SyncAppPods makes pods the only pods of workload with series, as
// SetAppPods declares them; series of the workload's other pods, which are
// gone, are dropped. With no pods the workload has no series.
func (e *Exporter) SyncAppPods(namespace, workload string, pods []string, rps, successRatio float64, latency time.Duration) {
	keep := map[string]bool{}
	for _, p := range pods {
		keep[p] = true
	}
	pod := podPattern(workload)
	e.remove(func(k seriesKey, labels []string) bool {
		return k.family == appFamily && labels[0] == namespace && pod.MatchString(labels[1]) && !keep[labels[1]]
	})
	if len(pods) > 0 {
		e.SetAppPods(namespace, pods, rps, successRatio, latency)
	}
}

// Remove drops every series of the workload in namespace: its Istio series
// and those of its pods, named <workload>-<hash>-<suffix>.
func (e *Exporter) Remove(namespace, workload string) {
	pod := podPattern(workload)
	e.remove(func(k seriesKey, labels []string) bool {
		switch k.family {
		case istioFamily:
			return labels[0] == workload && labels[1] == namespace
		case appFamily:
			return labels[0] == namespace && pod.MatchString(labels[1])
		}
		return false
	})
}

// podPattern matches the names of a Deployment's pods.
func podPattern(workload string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(workload) + `-[0-9a-zA-Z]+-[0-9a-zA-Z]+$`)
}

func (e *Exporter) remove(match func(k seriesKey, labels []string) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.series {
		if match(k, strings.Split(k.labels, labelSep)) {
			delete(e.series, k)
		}
	}
}

// set declares or changes the traffic of one series.
func (e *Exporter) set(k seriesKey, rps, successRatio float64, latency time.Duration) {
	checkTraffic(rps, successRatio, latency)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	tr := e.series[k]
	if tr == nil {
		tr = &traffic{bounds: k.family.bounds}
		for i := range tr.base {
			tr.base[i].buckets = make([]float64, len(tr.bounds))
		}
		e.series[k] = tr
	} else {
		tr.base = tr.totals(now)
	}
	tr.since = now
	tr.rates = [2]float64{rps * successRatio, rps * (1 - successRatio)}
	tr.latency = float64(latency) / float64(k.family.unit)
}

func checkTraffic(rps, successRatio float64, latency time.Duration) {
	if !(rps >= 0) || math.IsInf(rps, 1) || !(successRatio >= 0 && successRatio <= 1) || latency < 0 {
		panic(fmt.Sprintf("prometheus: invalid traffic: rps %v, success ratio %v, latency %v", rps, successRatio, latency))
	}
}

// traffic is a steady stream of requests whose totals grow with time.
type traffic struct {
	bounds  []float64  // histogram bucket upper bounds
	since   time.Time  // when the current rates were declared
	rates   [2]float64 // requests per second, by statusCodes index
	latency float64    // of every request, in the unit of bounds
	base    [2]totals  // totals at since
}

// totals are the cumulative figures of the requests with one status code.
type totals struct {
	count, sum float64
	buckets    []float64 // cumulative count per bound
}

// totals computes the figures at now.
func (tr *traffic) totals(now time.Time) [2]totals {
	secs := now.Sub(tr.since).Seconds()
	var out [2]totals
	for c, base := range tr.base {
		n := tr.rates[c] * secs
		t := totals{count: base.count + n, sum: base.sum + n*tr.latency, buckets: make([]float64, len(tr.bounds))}
		for i, le := range tr.bounds {
			t.buckets[i] = base.buckets[i]
			if le >= tr.latency {
				t.buckets[i] += n
			}
		}
		out[c] = t
	}
	return out
}

// served reports whether code index c has had or is getting requests; like
// real instrumentation, a series exists only once requests were seen.
func (tr *traffic) served(c int, t [2]totals) bool {
	return t[c].count > 0 || tr.rates[c] > 0
}

// collector exports the Exporter's traffic at scrape time.
type collector struct{ e *Exporter }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range families {
		if f.requests != nil {
			ch <- f.requests
		}
		ch <- f.duration
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	now := time.Now()
	for k, tr := range c.e.series {
		labels := strings.Split(k.labels, labelSep)
		t := tr.totals(now)
		if k.family.requests == nil {
			for code := range t {
				if tr.served(code, t) {
					ch <- newHistogram(k.family.duration, tr.bounds, t[code], append(labels, statusCodes[code])...)
				}
			}
			continue
		}
		all := totals{buckets: make([]float64, len(tr.bounds))}
		seen := false
		for code := range t {
			if !tr.served(code, t) {
				continue
			}
			seen = true
			ch <- prometheus.MustNewConstMetric(k.family.requests, prometheus.CounterValue, t[code].count, append(labels, statusCodes[code])...)
			all.count += t[code].count
			all.sum += t[code].sum
			for i, b := range t[code].buckets {
				all.buckets[i] += b
			}
		}
		if seen {
			ch <- newHistogram(k.family.duration, tr.bounds, all, labels...)
		}
	}
}

// histogram is a constant histogram with fractional counts, which
// prometheus.NewConstHistogram cannot express; they keep rates exact.
type histogram struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	bounds []float64
	t      totals
}

func newHistogram(desc *prometheus.Desc, bounds []float64, t totals, labelValues ...string) histogram {
	return histogram{desc: desc, labels: prometheus.MakeLabelPairs(desc, labelValues), bounds: bounds, t: t}
}

func (h histogram) Desc() *prometheus.Desc { return h.desc }

func (h histogram) Write(m *dto.Metric) error {
	buckets := make([]*dto.Bucket, len(h.bounds))
	for i, le := range h.bounds {
		buckets[i] = &dto.Bucket{UpperBound: new(le), CumulativeCountFloat: new(h.t.buckets[i])}
	}
	m.Label = h.labels
	m.Histogram = &dto.Histogram{SampleCountFloat: new(h.t.count), SampleSum: new(h.t.sum), Bucket: buckets}
	return nil
}
