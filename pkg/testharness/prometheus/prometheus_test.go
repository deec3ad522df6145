package prometheus

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/checks/metrics"
)

const (
	// waitTimeout bounds every wait for scrapes.
	waitTimeout = 30 * time.Second

	istioSuccessRate = `sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="apps",destination_workload="web-canary",response_code!~"5.*"}[30s])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="apps",destination_workload="web-canary"}[30s])) * 100`
	istioLatency     = `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="apps",destination_workload="web-canary"}[30s])) by (le))`
	// Flagger's pod selector for target web-canary.
	canaryPods     = `pod=~"web-canary-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`
	appSuccessRate = `sum(rate(http_request_duration_seconds_count{namespace="apps",` + canaryPods + `,status!~"5.*"}[30s])) / sum(rate(http_request_duration_seconds_count{namespace="apps",` + canaryPods + `}[30s])) * 100`
	appLatency     = `histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{namespace="apps",` + canaryPods + `}[30s])) by (le))`
)

// start runs an Exporter and a Prometheus scraping it for t.
func start(t *testing.T) (*Exporter, *Server) {
	t.Helper()
	e := NewExporter()
	t.Cleanup(e.Close)
	return e, StartForTest(t, Options{Targets: []string{e.Addr()}})
}

// waitCtx bounds one wait within t.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// query runs an instant query that must return a vector.
func query(t *testing.T, s *Server, q string) model.Vector {
	t.Helper()
	v, _, err := s.API().Query(t.Context(), q, time.Now())
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		t.Fatalf("query %s returned %s, want a vector", q, v.Type())
	}
	return vec
}

// value runs a query that must return exactly one sample.
func value(t *testing.T, s *Server, q string) float64 {
	t.Helper()
	vec := query(t, s, q)
	if len(vec) != 1 {
		t.Fatalf("query %s returned %d samples, want 1: %v", q, len(vec), vec)
	}
	return float64(vec[0].Value)
}

func assertNear(t *testing.T, what string, got, want, tolerance float64) {
	t.Helper()
	if math.Abs(got-want) > tolerance {
		t.Errorf("%s = %v, want %v ± %v", what, got, want, tolerance)
	} else {
		t.Logf("%s = %v", what, got)
	}
}

func assertIn(t *testing.T, what string, got, lo, hi float64) {
	t.Helper()
	if !(got > lo && got <= hi) {
		t.Errorf("%s = %v, want in (%v, %v]", what, got, lo, hi)
	} else {
		t.Logf("%s = %v", what, got)
	}
}

// checkLabels checks that the series selected, of which there must be some,
// have the names in want and exactly the label names (without __name__, in
// any order) want gives for theirs.
func checkLabels(t *testing.T, s *Server, selector string, want map[string]string) {
	t.Helper()
	vec := query(t, s, selector)
	if len(vec) == 0 {
		t.Fatalf("no series match %s", selector)
	}
	for _, sample := range vec {
		var names []string
		for name := range sample.Metric {
			if name != model.MetricNameLabel {
				names = append(names, string(name))
			}
		}
		w, ok := want[string(sample.Metric[model.MetricNameLabel])]
		wantNames := strings.Fields(w)
		slices.Sort(names)
		slices.Sort(wantNames)
		if !ok || !slices.Equal(names, wantNames) {
			t.Errorf("unexpected series %v", sample.Metric)
		}
	}
}

// waitGone polls q until it returns no samples.
func waitGone(t *testing.T, s *Server, q string) {
	t.Helper()
	ctx := waitCtx(t)
	for len(query(t, s, q)) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("%s still returns samples: %v", q, query(t, s, q))
		case <-time.After(pollInterval):
		}
	}
}

// TestMetrics checks, on one Prometheus scraping one Exporter, the queries
// that metric checks run. Sharing the server pays Prometheus 2.42's 5–10s
// delay before the first scrape of a new target only once.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e, s := start(t)
	declared := time.Now()
	e.SetIstioWorkload("apps", "web-canary", 20, 0.995, 50*time.Millisecond)
	// Other traffic the queries must not pick up.
	e.SetIstioWorkload("apps", "web-primary", 10, 0.5, 400*time.Millisecond)
	e.SetIstioWorkload("other", "web-canary", 10, 0.5, 400*time.Millisecond)
	e.SetAppPods("apps", []string{"web-canary-5d8f7c9b6-x2x4z", "web-canary-5d8f7c9b6-k8j2p"}, 10, 0.95, 200*time.Millisecond)
	e.SetAppPods("apps", []string{"web-primary-7c9f6d5b8-q7w8e"}, 10, 0.5, 2*time.Second)
	// Namespace removal is for the Remove subtest.
	e.SetIstioWorkload("removal", "web-canary", 20, 1, 10*time.Millisecond)
	e.SetIstioWorkload("removal", "web", 20, 1, 10*time.Millisecond)
	e.SetAppPods("removal", []string{"web-canary-5d8f7c9b6-x2x4z"}, 10, 1, 10*time.Millisecond)
	e.SetAppPods("removal", []string{"web-6b9f8c7d5-abcde"}, 10, 1, 10*time.Millisecond)
	// Ingress data planes: the canary gets a 10% error ratio and slow
	// answers, the primary neither.
	e.SetContourCluster("apps_web-canary_9898", 20, 0.9, 300*time.Millisecond)
	e.SetContourCluster("apps_web-primary_9898", 20, 1, 10*time.Millisecond)
	e.SetNGINXIngress("apps", "web", "apps-web-canary-9898", 20, 0.9, 300*time.Millisecond)
	e.SetNGINXIngress("apps", "web", "", 20, 1, 10*time.Millisecond)
	// Pod turnover is for the SyncAppPods subtest.
	e.SyncAppPods("turnover", "web", []string{"web-5d8f7c9b6-aaaaa", "web-5d8f7c9b6-bbbbb"}, 10, 1, 10*time.Millisecond)

	t.Run("Istio", func(t *testing.T) {
		if err := s.WaitForSeries(waitCtx(t), istioSuccessRate); err != nil {
			t.Fatal(err)
		}
		t.Logf("success rate computable %v after declaring", time.Since(declared).Round(time.Millisecond))
		assertNear(t, "success rate", value(t, s, istioSuccessRate), 99.5, 0.3)
		// Istio's bucket holding 50ms is (25, 50].
		assertIn(t, "p99 latency (ms)", value(t, s, istioLatency), 25, 50)

		const istioLabels = "destination_workload destination_workload_namespace instance job reporter"
		checkLabels(t, s, `{job="test",__name__=~"istio_.*"}`, map[string]string{
			"istio_requests_total":                       istioLabels + " response_code",
			"istio_request_duration_milliseconds_bucket": istioLabels + " le",
			"istio_request_duration_milliseconds_sum":    istioLabels,
			"istio_request_duration_milliseconds_count":  istioLabels,
		})

		// Counters grow at the declared rate: once scrapes cover a 5s window,
		// rate() over it is the declared rps.
		if err := s.WaitForSeries(waitCtx(t), `count_over_time(istio_requests_total{destination_workload_namespace="apps",destination_workload="web-canary",response_code="200"}[5s]) >= 5`); err != nil {
			t.Fatal(err)
		}
		assertNear(t, "requests per second", value(t, s, `sum(rate(istio_requests_total{destination_workload_namespace="apps",destination_workload="web-canary"}[5s]))`), 20, 0.5)
		assertNear(t, "5xx per second", value(t, s, `sum(rate(istio_requests_total{destination_workload_namespace="apps",destination_workload="web-canary",response_code="500"}[5s]))`), 0.1, 0.01)
	})

	t.Run("AppPods", func(t *testing.T) {
		if err := s.WaitForSeries(waitCtx(t), appSuccessRate); err != nil {
			t.Fatal(err)
		}
		assertNear(t, "success rate", value(t, s, appSuccessRate), 95, 0.3)
		// The default bucket holding 0.2s is (0.1, 0.25].
		assertIn(t, "p99 latency (s)", value(t, s, appLatency), 0.1, 0.25)
		const appLabels = "instance job namespace pod status"
		checkLabels(t, s, `{job="test",__name__=~"http_.*"}`, map[string]string{
			"http_request_duration_seconds_bucket": appLabels + " le",
			"http_request_duration_seconds_sum":    appLabels,
			"http_request_duration_seconds_count":  appLabels,
		})
		if n := len(query(t, s, `http_request_duration_seconds_count{namespace="apps",`+canaryPods+`}`)); n != 4 {
			t.Errorf("got %d canary count series, want 2 pods × 2 status codes", n)
		}
	})

	// The built-in queries Serin runs for these providers see exactly the
	// canary's traffic.
	for _, p := range []serinv1.Provider{serinv1.ProviderContour, serinv1.ProviderNGINX} {
		t.Run(string(p), func(t *testing.T) {
			vars := metrics.Vars{Namespace: "apps", Target: "web", Service: "web", Ingress: "web", Interval: "30s"}
			successRate := render(t, p, serinv1.MetricRequestSuccessRate, vars)
			if err := s.WaitForSeries(waitCtx(t), successRate); err != nil {
				t.Fatal(err)
			}
			assertNear(t, "success rate", value(t, s, successRate), 90, 0.3)
			// Both bucket sets hold 300ms in (250, 500] milliseconds.
			assertIn(t, "p99 latency (ms)", value(t, s, render(t, p, serinv1.MetricRequestDuration, vars)), 250, 500)
		})
	}

	t.Run("SyncAppPods", func(t *testing.T) {
		const (
			pods     = `http_request_duration_seconds_count{namespace="turnover"}`
			newPods  = `http_request_duration_seconds_count{namespace="turnover",pod=~"web-5d8f7c9b6-bbbbb|web-7c9f6d5b8-ccccc"}`
			survivor = `http_request_duration_seconds_count{namespace="turnover",pod="web-5d8f7c9b6-bbbbb"}`
		)
		if err := s.WaitForSeries(waitCtx(t), `count(`+pods+`) == 2`); err != nil {
			t.Fatal(err)
		}
		// A rollout replaced one pod: its series goes, the new pod's comes,
		// and the surviving pod's counter keeps growing without a reset.
		e.SyncAppPods("turnover", "web", []string{"web-5d8f7c9b6-bbbbb", "web-7c9f6d5b8-ccccc"}, 10, 1, 10*time.Millisecond)
		if err := s.WaitForSeries(waitCtx(t), `count(`+newPods+`) == 2 and count(`+pods+`) == 2`); err != nil {
			t.Fatal(err)
		}
		if n := value(t, s, `sum(resets(`+survivor+`[1m]))`); n != 0 {
			t.Errorf("the surviving pod's counter was reset %v times", n)
		}
		e.SyncAppPods("turnover", "web", nil, 10, 1, 10*time.Millisecond)
		waitGone(t, s, pods)
	})

	t.Run("Remove", func(t *testing.T) {
		const (
			canaryIstio = `istio_requests_total{destination_workload_namespace="removal",destination_workload="web-canary"}`
			canaryApp   = `http_request_duration_seconds_count{namespace="removal",` + canaryPods + `}`
			webIstio    = `istio_requests_total{destination_workload_namespace="removal",destination_workload="web"}`
			webApp      = `http_request_duration_seconds_count{namespace="removal",pod=~"web-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}`
		)
		for _, q := range []string{canaryIstio, canaryApp, webIstio, webApp} {
			if err := s.WaitForSeries(waitCtx(t), q); err != nil {
				t.Fatal(err)
			}
		}

		removed := time.Now()
		e.Remove("removal", "web-canary")
		// The next scrape misses the series, and Prometheus marks them stale.
		waitGone(t, s, canaryIstio)
		waitGone(t, s, canaryApp)
		t.Logf("series gone %v after Remove", time.Since(removed).Round(time.Millisecond))
		for _, q := range []string{webIstio, webApp} {
			if len(query(t, s, q)) == 0 {
				t.Errorf("%s is gone too", q)
			}
		}
	})
}

// render is the built-in query of provider p for metric name.
func render(t *testing.T, p serinv1.Provider, name string, vars metrics.Vars) string {
	t.Helper()
	tmpl, ok := metrics.BuiltinQuery(p, name)
	if !ok {
		t.Fatalf("no built-in %s query for %s", name, p)
	}
	q, err := metrics.Render(tmpl, vars)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestStopRestart(t *testing.T) {
	t.Parallel()
	e, s := start(t)
	e.SetIstioWorkload("apps", "web-canary", 20, 0.995, 50*time.Millisecond)
	const series = `istio_requests_total{destination_workload="web-canary"}`
	if err := s.WaitForSeries(waitCtx(t), series); err != nil {
		t.Fatal(err)
	}
	scraped := time.Now()
	pid := s.pid()

	stopping := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %v", time.Since(stopping).Round(time.Millisecond))
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", pid, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, _, err := s.API().Query(t.Context(), "up", time.Now()); err == nil {
		t.Error("query succeeded while Prometheus was stopped")
	}

	url := s.URL
	restarting := time.Now()
	if err := s.Restart(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted in %v", time.Since(restarting).Round(time.Millisecond))
	if s.URL != url || s.pid() == pid {
		t.Errorf("after Restart: URL %s, pid %d; want URL %s and a new process", s.URL, s.pid(), url)
	}
	if err := s.Restart(t.Context()); err == nil {
		t.Error("Restart of a running server succeeded")
	}
	// The data scraped before the stop survived.
	v, _, err := s.API().Query(t.Context(), series, scraped)
	if err != nil {
		t.Fatal(err)
	}
	if empty(v) {
		t.Errorf("%s at %v is gone after Restart", series, scraped)
	}
	// And scraping resumes; rates span the gap.
	if err := s.WaitForSeries(waitCtx(t), `timestamp(`+series+`) > `+model.TimeFromUnixNano(restarting.UnixNano()).String()); err != nil {
		t.Fatal(err)
	}
	assertNear(t, "success rate", value(t, s, istioSuccessRate), 99.5, 0.3)

	pid = s.pid()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Close = %v, want ESRCH", pid, err)
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv(BinaryEnv, "/nonexistent/prometheus")
	_, err := Start(t.Context(), Options{})
	if err == nil || !strings.Contains(err.Error(), "apt-get install prometheus") {
		t.Errorf("Start with a missing binary: %v, want an error saying to apt-get install prometheus", err)
	}
}
