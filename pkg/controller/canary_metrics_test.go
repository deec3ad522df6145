package controller_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/pkg/testharness/prometheus"
)

// withTelemetry starts an exporter with the canary pods' own HTTP metrics
// and a real Prometheus scraping it every second.
func withTelemetry(t *testing.T, ns, target string, successRatio float64) (*prometheus.Exporter, *prometheus.Server) {
	t.Helper()
	exporter := prometheus.NewExporter()
	t.Cleanup(exporter.Close)
	if successRatio > 0 {
		exporter.SetAppPods(ns, []string{target + "-7d9f8c6b5-x2k4p"}, 20, successRatio, 40*time.Millisecond)
	}
	prom := prometheus.StartForTest(t, prometheus.Options{Targets: []string{exporter.Addr()}})
	if successRatio > 0 {
		if err := prom.WaitForSeries(context.Background(), `count_over_time(http_request_duration_seconds_count{namespace="`+ns+`"}[30s]) > 2`); err != nil {
			t.Fatal(err)
		}
	}
	return exporter, prom
}

func successRateCheck(prom *prometheus.Server) func(*serinv1.Canary) {
	return func(c *serinv1.Canary) {
		c.Spec.MetricsServer = prom.URL
		c.Spec.Analysis.Metrics = []serinv1.CanaryMetric{{
			Name:           serinv1.MetricRequestSuccessRate,
			Interval:       "30s",
			ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)},
		}}
	}
}

func metricStatus(g Gomega, ns, name string) serinv1.MetricStatus {
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.Metrics).To(HaveLen(1))
	return c.Status.Metrics[0]
}

func TestCanaryReconciler_MetricsPass(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "healthy"
	_, prom := withTelemetry(t, ns, name, 0.995)
	initialized(t, g, ns, name, successRateCheck(prom), func(c *serinv1.Canary) { c.Spec.Analysis.Iterations = 2 })

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	m := metricStatus(g, ns, name)
	g.Expect(m.Verdict).To(Equal(serinv1.MetricPassed), m.Message)
	g.Expect(*m.Value).To(BeNumerically("~", 99.5, 0.3), "the measured value is in the Canary status")
	g.Expect(get(g, ns, name, &serinv1.Canary{}).Status.FailedChecks).To(BeZero())
	g.Eventually(func() []string { return events(g, ns, name, "MetricPassed") }, eventWait, poll).Should(ContainElement(ContainSubstring("request-success-rate: 99.")))
}

func TestCanaryReconciler_MetricsFailRollsBack(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "erroring"
	_, prom := withTelemetry(t, ns, name, 0.90)
	initialized(t, g, ns, name, successRateCheck(prom))

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.FailedChecks).To(Equal(2))
	m := metricStatus(g, ns, name)
	g.Expect(m.Verdict).To(Equal(serinv1.MetricFailed))
	g.Expect(*m.Value).To(BeNumerically("~", 90, 0.5))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v1"))
}

func TestCanaryReconciler_MetricsNoData(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "silent"
	_, prom := withTelemetry(t, ns, name, 0)
	initialized(t, g, ns, name, successRateCheck(prom), func(c *serinv1.Canary) { c.Spec.Analysis.Threshold = 1 })
	phases := recordPhases(t, ns, name)

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() serinv1.MetricVerdict {
		c := get(g, ns, name, &serinv1.Canary{})
		if len(c.Status.Metrics) == 0 {
			return ""
		}
		return c.Status.Metrics[0].Verdict
	}, release, poll).Should(Equal(serinv1.MetricNoData))
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.Phase).To(Equal(serinv1.CanaryPhaseProgressing), "no data is not a failed check")
	g.Expect(c.Status.FailedChecks).To(BeZero())
	g.Expect(c.Status.Iterations).To(BeZero(), "nor a passed iteration")

	// The third no-data result in a row counts as the failed check that
	// reaches threshold 1.
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseFailed))
	m := metricStatus(g, ns, name)
	g.Expect(m.NoData).To(Equal(3))
	g.Expect(m.Message).To(ContainSubstring("3 in a row"))
	g.Eventually(func() []string { return events(g, ns, name, "MetricNoData") }, eventWait, poll).ShouldNot(BeEmpty())
	g.Eventually(func() []string { return events(g, ns, name, "NoVerdict") }, eventWait, poll).ShouldNot(BeEmpty())
	c = get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.Iterations).To(BeZero(), "a release without data never advances")
	g.Expect(phases.seen()).NotTo(ContainElement(serinv1.CanaryPhasePromoting))
	g.Expect(image(g, ns, name+"-primary")).To(Equal("example.com/app:v1"))
	g.Expect(c.Status.History).To(HaveLen(3))
	for _, r := range c.Status.History[:2] {
		g.Expect(r.Verdict).To(Equal("Inconclusive"))
		g.Expect(r.Checks).To(Equal(serinv1.MetricRequestSuccessRate + "=no-data"))
		g.Expect(r.Action).To(Equal("hold"))
	}
	g.Expect(c.Status.History[2].Verdict).To(Equal("Failed"))
}

func TestCanaryReconciler_PrometheusOutage(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "outage"
	_, prom := withTelemetry(t, ns, name, 0.995)
	initialized(t, g, ns, name, successRateCheck(prom), func(c *serinv1.Canary) { c.Spec.Analysis.Iterations = 4 })

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() int { return get(g, ns, name, &serinv1.Canary{}).Status.Iterations }, release, poll).Should(Equal(1))
	g.Expect(prom.Stop()).To(Succeed())
	g.Eventually(func() serinv1.MetricVerdict { return metricStatus(g, ns, name).Verdict }, release, poll).Should(Equal(serinv1.MetricError))
	c := get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.Phase).To(Equal(serinv1.CanaryPhaseProgressing))
	g.Expect(c.Status.FailedChecks).To(BeZero(), "one error is counted apart from failures")
	g.Expect(c.Status.Metrics[0].Errors).To(Equal(1))
	g.Expect(c.Status.Iterations).To(Equal(1), "an interval without data holds the iteration")

	g.Expect(prom.Restart(context.Background())).To(Succeed())
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	c = get(g, ns, name, &serinv1.Canary{})
	g.Expect(c.Status.FailedChecks).To(BeZero())
	g.Expect(c.Status.Metrics[0].Verdict).To(Equal(serinv1.MetricPassed))
	g.Expect(c.Status.Metrics[0].Errors).To(BeNumerically(">=", 1))
	g.Expect(c.Status.Iterations).To(Equal(4), "each iteration counted once")
	g.Expect(c.Status.Metrics[0].Errors).To(BeNumerically("<", 3), "the outage stayed under the limit")
}

// eventWait is how long a test waits for an Event: Events are recorded
// asynchronously, after the status of the decision they announce.
const eventWait = 30 * time.Second

// events returns the messages of the Canary's Events with a reason.
func events(g Gomega, ns, name, reason string) []string {
	var list corev1.EventList
	g.Expect(k8sClient.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name && e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}
