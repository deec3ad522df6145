package prometheus

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// istioBuckets are the bucket bounds of Istio's
// istio_request_duration_milliseconds histogram.
var istioBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// statusCodes are the response codes of successful and failed requests.
var statusCodes = [2]string{"200", "500"}

var (
	istioRequestsDesc = prometheus.NewDesc("istio_requests_total",
		"Requests received by the workload, as reported by Istio.",
		[]string{"reporter", "destination_workload", "destination_workload_namespace", "response_code"}, nil)
	istioDurationDesc = prometheus.NewDesc("istio_request_duration_milliseconds",
		"Request duration in milliseconds, as reported by Istio.",
		[]string{"reporter", "destination_workload", "destination_workload_namespace"}, nil)
	appDurationDesc = prometheus.NewDesc("http_request_duration_seconds",
		"Request duration in seconds, as reported by the application.",
		[]string{"namespace", "pod", "status"}, nil)
)

// Exporter serves synthetic Istio and application telemetry at /metrics on
// a loopback port. Counters are computed at scrape time from the declared
// request rates, so rate() over them yields the declared rates. Close it
// when done.
type Exporter struct {
	*httptest.Server

	mu    sync.Mutex
	istio map[workloadKey]*traffic // by namespace and workload
	pods  map[workloadKey]*traffic // by namespace and pod
}

type workloadKey struct{ namespace, name string }

// NewExporter starts an Exporter with no series.
func NewExporter() *Exporter {
	e := &Exporter{
		istio: map[workloadKey]*traffic{},
		pods:  map[workloadKey]*traffic{},
	}
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
	checkTraffic(rps, successRatio, latency)
	e.mu.Lock()
	defer e.mu.Unlock()
	set(e.istio, workloadKey{namespace, workload}, istioBuckets, rps, successRatio, float64(latency)/float64(time.Millisecond))
}

// SetAppPods declares the steady traffic an application's pods receive, as
// its own http_request_duration_seconds histogram reports it: rps requests
// per second in total, split evenly across pods, of which the successRatio
// share answer 200 and the rest 500, all taking latency. Pod names should
// look like <workload>-<hash>-<suffix> for Remove and Flagger's queries to
// match them. Declaring a pod again changes its traffic from now on.
func (e *Exporter) SetAppPods(namespace string, pods []string, rps, successRatio float64, latency time.Duration) {
	checkTraffic(rps, successRatio, latency)
	if len(pods) == 0 {
		panic("prometheus: SetAppPods needs at least one pod")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, pod := range pods {
		set(e.pods, workloadKey{namespace, pod}, prometheus.DefBuckets, rps/float64(len(pods)), successRatio, latency.Seconds())
	}
}

// Remove drops every series of the workload in namespace: its Istio series
// and those of its pods, named <workload>-<hash>-<suffix>.
func (e *Exporter) Remove(namespace, workload string) {
	pod := regexp.MustCompile(`^` + regexp.QuoteMeta(workload) + `-[0-9a-zA-Z]+-[0-9a-zA-Z]+$`)
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.istio, workloadKey{namespace, workload})
	for k := range e.pods {
		if k.namespace == namespace && pod.MatchString(k.name) {
			delete(e.pods, k)
		}
	}
}

func checkTraffic(rps, successRatio float64, latency time.Duration) {
	if !(rps >= 0) || math.IsInf(rps, 1) || !(successRatio >= 0 && successRatio <= 1) || latency < 0 {
		panic(fmt.Sprintf("prometheus: invalid traffic: rps %v, success ratio %v, latency %v", rps, successRatio, latency))
	}
}

// set declares or changes the traffic stored under k.
func set(m map[workloadKey]*traffic, k workloadKey, bounds []float64, rps, successRatio, latency float64) {
	now := time.Now()
	tr := m[k]
	if tr == nil {
		tr = &traffic{bounds: bounds}
		for i := range tr.base {
			tr.base[i].buckets = make([]float64, len(bounds))
		}
		m[k] = tr
	} else {
		tr.base = tr.totals(now)
	}
	tr.since = now
	tr.rates = [2]float64{rps * successRatio, rps * (1 - successRatio)}
	tr.latency = latency
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
	ch <- istioRequestsDesc
	ch <- istioDurationDesc
	ch <- appDurationDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	now := time.Now()
	for k, tr := range c.e.istio {
		t := tr.totals(now)
		all := totals{buckets: make([]float64, len(tr.bounds))}
		seen := false
		for code := range t {
			if !tr.served(code, t) {
				continue
			}
			seen = true
			ch <- prometheus.MustNewConstMetric(istioRequestsDesc, prometheus.CounterValue, t[code].count,
				"destination", k.name, k.namespace, statusCodes[code])
			all.count += t[code].count
			all.sum += t[code].sum
			for i, b := range t[code].buckets {
				all.buckets[i] += b
			}
		}
		if seen {
			ch <- newHistogram(istioDurationDesc, tr.bounds, all, "destination", k.name, k.namespace)
		}
	}
	for k, tr := range c.e.pods {
		t := tr.totals(now)
		for code := range t {
			if tr.served(code, t) {
				ch <- newHistogram(appDurationDesc, tr.bounds, t[code], k.namespace, k.name, statusCodes[code])
			}
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
