//go:build e2e

package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/stack"
)

const (
	appName = "podinfo"
	v2      = "ghcr.io/serin-dev/podinfo:6.0.1"
)

var providers = []serinv1.Provider{
	serinv1.ProviderIstio, serinv1.ProviderContour, serinv1.ProviderNGINX, serinv1.ProviderGatewayAPI, serinv1.ProviderKubernetes,
}

func interval(c *serinv1.Canary) time.Duration {
	d, err := time.ParseDuration(c.Spec.Analysis.Interval)
	if err != nil {
		panic(err)
	}
	return d
}

// promotionFloor is the least time a release can take: one interval per
// step (weight step or iteration).
func promotionFloor(c *serinv1.Canary) time.Duration {
	a := c.Spec.Analysis
	steps := a.Iterations
	if steps == 0 {
		steps = a.MaxWeight / a.StepWeight
	}
	return time.Duration(steps) * interval(c)
}

// rollbackFloor is the least time a failing release takes: one interval
// per failed check up to the threshold.
func rollbackFloor(c *serinv1.Canary) time.Duration {
	return time.Duration(c.Spec.Analysis.Threshold) * interval(c)
}

func image(g Gomega, ns, name string) string {
	img, err := st.Image(context.Background(), ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	return img
}

// TestRelease runs, on every provider, a healthy release that is promoted
// and two bad ones that are rolled back by the built-in checks.
func TestRelease(t *testing.T) {
	for _, p := range providers {
		t.Run(string(p)+"/healthy", func(t *testing.T) {
			c := stack.NewCanary("", appName, p)
			s := newScenario(t, c)
			s.release(v2, stack.Behaviour{})
			got := s.finish(serinv1.CanaryPhaseSucceeded, promotionFloor(c))

			g := s.g
			g.Expect(s.primaryImage()).To(Equal(v2), "promotion copies the canary into the primary")
			sr := metric(g, got, serinv1.MetricRequestSuccessRate)
			g.Expect(sr.Verdict).To(Equal(serinv1.MetricPassed), sr.Message)
			g.Expect(*sr.Value).To(BeNumerically(">=", 99.9))
			d := metric(g, got, serinv1.MetricRequestDuration)
			g.Expect(d.Verdict).To(Equal(serinv1.MetricPassed), d.Message)
			// 20ms requests fall in the (10ms, 25ms] bucket of every data plane.
			g.Expect(*d.Value).To(And(BeNumerically(">", 10), BeNumerically("<=", 25)))
			g.Expect(got.Status.FailedChecks).To(BeZero())

			weights, routed, _, _ := s.seen()
			if p == serinv1.ProviderKubernetes {
				// Blue/green: the apex Service selects the canary while it
				// is tested, then the promoted primary again.
				g.Expect(routed).To(ContainElement(100))
			} else {
				g.Expect(weights).To(ContainElements(25, 50))
				g.Expect(routed).To(ContainElements(25, 50), "each step reached the routing objects")
			}
			g.Eventually(func() int { _, r, _, _ := s.seen(); return r[len(r)-1] }, 10*time.Second, poll).Should(BeZero())
		})

		t.Run(string(p)+"/errors", func(t *testing.T) {
			c := stack.NewCanary("", appName, p)
			s := newScenario(t, c)
			s.release(v2, stack.Behaviour{ErrorRatio: 0.1})
			got := s.finish(serinv1.CanaryPhaseFailed, rollbackFloor(c))

			g := s.g
			g.Expect(got.Status.FailedChecks).To(Equal(c.Spec.Analysis.Threshold))
			sr := metric(g, got, serinv1.MetricRequestSuccessRate)
			g.Expect(sr.Verdict).To(Equal(serinv1.MetricFailed), sr.Message)
			g.Expect(*sr.Value).To(BeNumerically("~", 90, 1), "the canary's 10% errors")
			g.Expect(s.primaryImage()).To(Equal(stack.AppImage), "the primary keeps the old version")
			g.Eventually(func() int { _, r, _, _ := s.seen(); return r[len(r)-1] }, 10*time.Second, poll).Should(BeZero(), "traffic is back on the primary")
		})

		t.Run(string(p)+"/latency", func(t *testing.T) {
			c := stack.NewCanary("", appName, p)
			s := newScenario(t, c)
			s.release(v2, stack.Behaviour{Latency: 600 * time.Millisecond})
			got := s.finish(serinv1.CanaryPhaseFailed, rollbackFloor(c))

			g := s.g
			d := metric(g, got, serinv1.MetricRequestDuration)
			g.Expect(d.Verdict).To(Equal(serinv1.MetricFailed), d.Message)
			// 600ms requests fall in the (500ms, 1s] bucket.
			g.Expect(*d.Value).To(And(BeNumerically(">", 500), BeNumerically("<=", 1000)))
			g.Expect(metric(g, got, serinv1.MetricRequestSuccessRate).Verdict).To(Equal(serinv1.MetricPassed), "only the latency regressed")
			g.Expect(s.primaryImage()).To(Equal(stack.AppImage))
			g.Eventually(func() int { _, r, _, _ := s.seen(); return r[len(r)-1] }, 10*time.Second, poll).Should(BeZero())
		})
	}
}

// TestABTesting sends requests with a header to the canary, on the
// providers whose routes can match headers.
func TestABTesting(t *testing.T) {
	for _, p := range []serinv1.Provider{serinv1.ProviderIstio, serinv1.ProviderGatewayAPI} {
		t.Run(string(p), func(t *testing.T) {
			c := stack.NewCanary("", appName, p)
			c.Spec.Analysis.StepWeight, c.Spec.Analysis.MaxWeight = 0, 0
			c.Spec.Analysis.Iterations = 2
			c.Spec.Analysis.Match = []apiextensionsv1.JSON{{Raw: []byte(`{"headers":{"x-canary":{"exact":"insider"}}}`)}}
			s := newScenario(t, c)
			s.release(v2, stack.Behaviour{})
			got := s.finish(serinv1.CanaryPhaseSucceeded, promotionFloor(c))

			g := s.g
			_, _, analysed, matched := s.seen()
			g.Expect(matched).To(BeTrue(), "the routes sent requests with x-canary: insider to the canary")
			g.Expect(analysed).To(HaveEach(BeZero()), "A/B testing shifts no weight while it analyses")
			sr := metric(g, got, serinv1.MetricRequestSuccessRate)
			g.Expect(sr.Verdict).To(Equal(serinv1.MetricPassed), "the matching requests reached the canary: %s", sr.Message)
			g.Expect(s.primaryImage()).To(Equal(v2))
		})
	}
}

// app stands in for the app where serin-tester sends load: it answers a
// fixed status and counts requests.
type app struct {
	url      string
	requests atomic.Int64

	mu       sync.Mutex
	arrivals []time.Time
}

func newApp(t *testing.T, status int) *app {
	a := &app{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		a.requests.Add(1)
		a.mu.Lock()
		a.arrivals = append(a.arrivals, time.Now())
		a.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

// testerSecret is the secretRef of webhooks that call serin-tester: the
// Secret testerToken creates in the scenario's namespace.
var testerSecret = &corev1.LocalObjectReference{Name: stack.TesterSecret}

// testerToken gives the scenario's namespace its serin-tester token, in
// the Secret testerSecret names, before the release calls any webhook.
func (s *scenario) testerToken() string {
	token, err := st.TesterToken(s.t.Context(), s.ns)
	s.g.Expect(err).NotTo(HaveOccurred())
	return token
}

// TestSmokeTestFails runs a blocking load test through serin-tester before
// the rollout; the app answers 500, so the release is rolled back before
// any traffic moves.
func TestSmokeTestFails(t *testing.T) {
	c := stack.NewCanary("", appName, serinv1.ProviderIstio)
	app := newApp(t, http.StatusInternalServerError)
	c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{
		Name: "smoke", Type: serinv1.PreRolloutHook, URL: st.TesterURL + "/", Timeout: "10s", SecretRef: testerSecret,
		Metadata: map[string]string{"type": "load", "url": app.url, "blocking": "true", "duration": "2s", "rate": "20", "minSuccessRate": "99"},
	}}
	s := newScenario(t, c)
	s.testerToken()
	s.release(v2, stack.Behaviour{})
	// The first pre-rollout check runs as soon as the canary is ready, so
	// the threshold is reached one interval sooner than by analysis checks.
	got := s.finish(serinv1.CanaryPhaseFailed, rollbackFloor(c)-interval(c))

	g := s.g
	g.Expect(app.requests.Load()).To(BeNumerically(">=", 20), "serin-tester sent the smoke test's load")
	weights, routed, _, _ := s.seen()
	g.Expect(weights).To(HaveEach(BeZero()), "no traffic moved to a canary that failed its smoke test")
	g.Expect(routed).To(HaveEach(BeZero()))
	g.Expect(got.Status.FailedChecks).To(Equal(c.Spec.Analysis.Threshold))
	g.Expect(s.primaryImage()).To(Equal(stack.AppImage))
}

// TestConfirmPromotionGate holds the release at WaitingPromotion behind a
// closed serin-tester gate, then opens it.
func TestConfirmPromotionGate(t *testing.T) {
	const hold = 15 * time.Second
	c := stack.NewCanary("", appName, serinv1.ProviderIstio)
	c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "gate", Type: serinv1.ConfirmPromotionHook, URL: st.TesterURL + "/gate/check", SecretRef: testerSecret}}
	s := newScenario(t, c)
	token := s.testerToken()
	s.release(v2, stack.Behaviour{})

	g := s.g
	g.Eventually(s.phase, releaseTimeout, poll).Should(Equal(serinv1.CanaryPhaseWaitingPromotion))
	g.Consistently(s.phase, hold, poll).Should(Equal(serinv1.CanaryPhaseWaitingPromotion), "a closed gate holds the promotion")
	g.Expect(s.primaryImage()).To(Equal(stack.AppImage))

	body, err := json.Marshal(map[string]string{"name": c.Name, "namespace": s.ns})
	g.Expect(err).NotTo(HaveOccurred())
	openGate := func(token string) int {
		req, err := http.NewRequest(http.MethodPost, st.TesterURL+"/gate/open", bytes.NewReader(body))
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		return resp.StatusCode
	}
	g.Expect(openGate("")).To(Equal(http.StatusUnauthorized), "serin-tester wants a token")
	g.Expect(openGate(token)).To(Equal(http.StatusAccepted))

	s.finish(serinv1.CanaryPhaseSucceeded, promotionFloor(c)+hold)
	g.Expect(s.primaryImage()).To(Equal(v2))
}

// TestLoadDuringRollout has serin-tester generate traffic at every
// iteration of the analysis, as a rollout webhook.
func TestLoadDuringRollout(t *testing.T) {
	c := stack.NewCanary("", appName, serinv1.ProviderIstio)
	app := newApp(t, http.StatusOK)
	c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{
		Name: "load", Type: serinv1.RolloutHook, URL: st.TesterURL + "/", SecretRef: testerSecret,
		Metadata: map[string]string{"type": "load", "url": app.url, "duration": "3s", "rate": "10"},
	}}
	s := newScenario(t, c)
	s.testerToken()
	g := s.g
	g.Expect(app.requests.Load()).To(BeZero(), "no load before the release")
	s.release(v2, stack.Behaviour{})
	g.Eventually(app.requests.Load, releaseTimeout, poll).Should(BeNumerically(">=", 10), "load arrives while the canary is analysed")
	g.Expect(s.phase()).To(BeElementOf(serinv1.CanaryPhaseProgressing, serinv1.CanaryPhasePromoting, serinv1.CanaryPhaseFinalising))
	s.finish(serinv1.CanaryPhaseSucceeded, promotionFloor(c))
	// Each of the two analysed steps (25%, 50%) started a 3s run, an
	// interval apart: two bursts of requests.
	g.Eventually(app.bursts, 10*time.Second, poll).Should(Equal(2))
}

// bursts counts the runs of requests the app received: arrivals more than
// 4s apart start a new one.
func (a *app) bursts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for i, t := range a.arrivals {
		if i == 0 || t.Sub(a.arrivals[i-1]) > 4*time.Second {
			n++
		}
	}
	return n
}

// TestControllerMetrics scrapes the controller's /metrics during a release
// and checks that the release series move as the release does; then it
// runs every query of the Grafana dashboard against Prometheus, which
// scrapes the controller too.
func TestControllerMetrics(t *testing.T) {
	c := stack.NewCanary("", appName, serinv1.ProviderIstio)
	s := newScenario(t, c)
	g := s.g
	labels := map[string]string{"name": c.Name, "namespace": s.ns, "provider": "istio", "strategy": "canary"}
	g.Eventually(func() float64 { return scrape(g, "serin_canary_status", labels) }, 10*time.Second, poll).Should(Equal(1.0), "Initialized is settled")

	var mu sync.Mutex
	var weights, statuses []float64
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			w, st := scrape(g, "serin_canary_weight", labels), scrape(g, "serin_canary_status", labels)
			mu.Lock()
			weights, statuses = appendChange(weights, w), appendChange(statuses, st)
			mu.Unlock()
			time.Sleep(poll)
		}
	}()
	s.release(v2, stack.Behaviour{})
	s.finish(serinv1.CanaryPhaseSucceeded, promotionFloor(c))
	g.Eventually(func() float64 { return scrape(g, "serin_canary_successes_total", labels) }, 10*time.Second, poll).Should(Equal(1.0))
	stop()
	<-done
	// The scraper can stop between the last change and its next sample.
	// The status is set before the success is counted, so one more
	// sample now sees the settled release.
	weights = appendChange(weights, scrape(g, "serin_canary_weight", labels))
	statuses = appendChange(statuses, scrape(g, "serin_canary_status", labels))

	g.Expect(weights).To(Equal([]float64{0, 25, 50, 0}), "serin_canary_weight follows the steps")
	g.Expect(statuses).To(Equal([]float64{1, 0, 1}), "serin_canary_status: settled, running, succeeded")
	g.Expect(scrape(g, "serin_canary_failures_total", labels)).To(BeZero())
	g.Expect(scrape(g, "serin_canary_duration_seconds_count", labels)).To(Equal(1.0))
	g.Expect(scrape(g, "serin_canary_duration_seconds_sum", labels)).To(BeNumerically(">=", promotionFloor(c).Seconds()))
	metricLabels := map[string]string{"metric": serinv1.MetricRequestSuccessRate}
	for k, v := range labels {
		metricLabels[k] = v
	}
	g.Expect(scrape(g, "serin_canary_metric_value", metricLabels)).To(BeNumerically(">=", 99.9))

	// The dashboard uses only Serin's release series, and each of its
	// queries runs on Prometheus; the weight and info panels show this
	// Canary.
	exprs := dashboardQueries(g)
	g.Expect(exprs).NotTo(BeEmpty())
	series := regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)
	for _, e := range exprs {
		for _, m := range series.FindAllStringSubmatch(e, -1) {
			g.Expect(m[1]).To(MatchRegexp(`^serin_canary_(info|status|weight|duration_seconds_bucket|metric_value|successes_total|failures_total)$`), e)
		}
		q := strings.NewReplacer("$namespace", s.ns, "$canary", c.Name).Replace(e)
		g.Eventually(func() (int, error) { return promResults(t.Context(), q) }, 30*time.Second, time.Second).Should(BeNumerically(">", 0), q)
	}
}

// scrape reads one sample of the controller's /metrics: the series name
// (a counter, gauge or histogram _count/_sum) whose labels include labels.
func scrape(g Gomega, name string, labels map[string]string) float64 {
	resp, err := http.Get(st.ControllerMetricsURL)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	family, suffix := name, ""
	for _, s := range []string{"_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, s); ok && families[name] == nil {
			family, suffix = base, s
		}
	}
	f := families[family]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if !match {
			continue
		}
		switch {
		case suffix == "_count":
			return float64(m.GetHistogram().GetSampleCount())
		case suffix == "_sum":
			return m.GetHistogram().GetSampleSum()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		default:
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// dashboardQueries are the PromQL expressions of the chart's dashboard.
func dashboardQueries(g Gomega) []string {
	raw, err := os.ReadFile("../../charts/serin/dashboards/serin.json")
	g.Expect(err).NotTo(HaveOccurred())
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	g.Expect(json.Unmarshal(raw, &d)).To(Succeed())
	var out []string
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out = append(out, t.Expr)
		}
	}
	return out
}

// promResults is how many series or samples query returns on the stack's
// Prometheus.
func promResults(ctx context.Context, query string) (int, error) {
	v, _, err := st.Prometheus.API().Query(ctx, query, time.Now())
	if err != nil {
		return 0, err
	}
	switch r := v.(type) {
	case model.Vector:
		return len(r), nil
	case model.Matrix:
		return len(r), nil
	}
	return 1, nil
}

// TestRollbackReaction measures how soon traffic is back on the primary
// after the check that crosses the threshold: a rollout webhook that
// fails is that check, and the routing objects are read every 20ms.
func TestRollbackReaction(t *testing.T) {
	var mu sync.Mutex
	var calls []time.Time
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(hook.Close)
	c := stack.NewCanary("", appName, serinv1.ProviderIstio)
	c.Spec.Analysis.Metrics = nil
	c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "acceptance", Type: serinv1.RolloutHook, URL: hook.URL}}
	s := newScenario(t, c)
	g := s.g

	var shifted, back time.Time
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil && back.IsZero() {
			if tr, err := st.Telemetry.Routes(ctx, c); err == nil {
				switch {
				case tr.CanaryWeight > 0 && shifted.IsZero():
					shifted = time.Now()
				case tr.CanaryWeight == 0 && !shifted.IsZero():
					back = time.Now()
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	s.release(v2, stack.Behaviour{})
	s.finish(serinv1.CanaryPhaseFailed, rollbackFloor(c))
	g.Eventually(done, 5*time.Second).Should(BeClosed())
	stop()

	mu.Lock()
	defer mu.Unlock()
	g.Expect(calls).To(HaveLen(c.Spec.Analysis.Threshold), "one failing check per interval up to the threshold")
	g.Expect(back.IsZero()).To(BeFalse(), "the routing went back to the primary")
	reaction := back.Sub(calls[len(calls)-1])
	t.Logf("traffic back on the primary %v after the check that crossed the threshold", reaction.Round(time.Millisecond))
	g.Expect(reaction).To(BeNumerically("<", time.Second))
}
