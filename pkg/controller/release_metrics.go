package controller

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/buildinfo"
)

// The release series Serin exports on /metrics, besides controller-runtime's
// and Flux's reconcile metrics. Every series carries the Canary's name,
// namespace, provider and strategy.
var (
	releaseLabels = []string{"name", "namespace", "provider", "strategy"}

	// canaryInfo also names the target, so that queries (and the Flagger
	// recording rules) can join the other series to it.
	canaryInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "serin_canary_info",
		Help: "Always 1 for each Canary this controller serves, with the name of its target.",
	}, append(releaseLabels[:len(releaseLabels):len(releaseLabels)], "target"))
	canaryStatus = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "serin_canary_status",
		Help: "The state of the Canary's last release: 0 running, 1 succeeded (or initialised), 2 failed.",
	}, releaseLabels)
	canaryWeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "serin_canary_weight",
		Help: "The percentage of traffic routed to the canary.",
	}, releaseLabels)
	canaryDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "serin_canary_duration_seconds",
		Help:    "How long releases took, from the new revision to promotion or rollback.",
		Buckets: []float64{30, 60, 120, 300, 600, 900, 1800, 3600, 7200},
	}, releaseLabels)
	canaryMetricValue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "serin_canary_metric_value",
		Help: "The last measured value of each metric check of the Canary.",
	}, append(releaseLabels[:len(releaseLabels):len(releaseLabels)], "metric"))
	canarySuccesses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "serin_canary_successes_total",
		Help: "Releases promoted.",
	}, releaseLabels)
	canaryFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "serin_canary_failures_total",
		Help: "Releases rolled back.",
	}, releaseLabels)

	// notificationsDropped counts the event webhook calls and alerts that
	// did not fit their namespace's queue.
	notificationsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "serin_notifications_dropped_total",
		Help: "Event webhook calls, post-rollout webhook calls and alerts dropped because their namespace's queue was full.",
	}, []string{"kind"})

	releaseCollectors = []*prometheus.MetricVec{
		canaryInfo.MetricVec, canaryStatus.MetricVec, canaryWeight.MetricVec, canaryDuration.MetricVec,
		canaryMetricValue.MetricVec, canarySuccesses.MetricVec, canaryFailures.MetricVec,
	}
)

// buildInfo is 1 with the controller's version, commit and Go version, for
// dashboards and alerts that tell releases of Serin apart.
var buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "serin_info",
	Help: "Serin's build: 1, with the version, commit and Go version as labels.",
}, []string{"version", "commit", "go_version"})

func init() {
	buildInfo.WithLabelValues(buildinfo.Version, buildinfo.Commit, buildinfo.GoVersion()).Set(1)
	crmetrics.Registry.MustRegister(buildInfo, notificationsDropped, canaryInfo, canaryStatus, canaryWeight, canaryDuration, canaryMetricValue, canarySuccesses, canaryFailures)
}

// releaseStarts holds when each release in flight started, by Canary, for
// serin_canary_duration_seconds. It is memory only: a release that a
// restart interrupts is not timed.
var releaseStarts sync.Map // types.NamespacedName → time.Time

// infoTargets holds the target serin_canary_info last named, by Canary, so
// that a changed targetRef leaves one info series.
var infoTargets sync.Map // types.NamespacedName → string

// settled reports whether a phase ends a release (or precedes any).
func settled(p serinv1.CanaryPhase) bool {
	switch p {
	case "", serinv1.CanaryPhaseInitializing, serinv1.CanaryPhaseInitialized, serinv1.CanaryPhaseSucceeded, serinv1.CanaryPhaseFailed:
		return true
	}
	return false
}

// recordRelease updates the release series of c after a reconcile that
// found it in phase before.
func (r *CanaryReconciler) recordRelease(c *serinv1.Canary, before serinv1.CanaryPhase) {
	provider := string(r.provider(c))
	if c.Spec.IsFlagRollout() {
		// No router: the split is written into flagd's definitions.
		provider = "flagd"
	}
	labels := prometheus.Labels{
		"name":      c.Name,
		"namespace": c.Namespace,
		"provider":  provider,
		"strategy":  strings.ToLower(string(analysis.StrategyOf(c.Spec.Analysis))),
	}
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	if last, ok := infoTargets.Swap(key, c.Spec.TargetRef.Name); ok && last != c.Spec.TargetRef.Name {
		canaryInfo.DeletePartialMatch(prometheus.Labels{"name": c.Name, "namespace": c.Namespace})
	}
	info := prometheus.Labels{"target": c.Spec.TargetRef.Name}
	for k, v := range labels {
		info[k] = v
	}
	canaryInfo.With(info).Set(1)
	canaryWeight.With(labels).Set(float64(c.Status.CanaryWeight))
	status := 0.0
	switch c.Status.Phase {
	case serinv1.CanaryPhaseInitialized, serinv1.CanaryPhaseSucceeded:
		status = 1
	case serinv1.CanaryPhaseFailed:
		status = 2
	}
	canaryStatus.With(labels).Set(status)
	for _, m := range c.Status.Metrics {
		if m.Value != nil {
			metricLabels := prometheus.Labels{"metric": m.Name}
			for k, v := range labels {
				metricLabels[k] = v
			}
			canaryMetricValue.With(metricLabels).Set(*m.Value)
		}
	}
	// The counters exist from the first reconcile, so that increase()
	// sees the first release.
	successes, failures := canarySuccesses.With(labels), canaryFailures.With(labels)

	now := settled(c.Status.Phase)
	switch {
	case settled(before) && !now:
		releaseStarts.Store(key, r.Now())
	case !settled(before) && now:
		switch c.Status.Phase {
		case serinv1.CanaryPhaseSucceeded:
			successes.Inc()
		case serinv1.CanaryPhaseFailed:
			failures.Inc()
		}
		if started, ok := releaseStarts.LoadAndDelete(key); ok {
			canaryDuration.With(labels).Observe(r.Now().Sub(started.(time.Time)).Seconds())
		}
	}
}

// forgetRelease drops the series of a Canary that is gone, so deleted
// Canaries do not linger on /metrics.
func forgetRelease(key types.NamespacedName) {
	releaseStarts.Delete(key)
	infoTargets.Delete(key)
	for _, v := range releaseCollectors {
		v.DeletePartialMatch(prometheus.Labels{"name": key.Name, "namespace": key.Namespace})
	}
}
