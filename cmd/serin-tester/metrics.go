package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Task outcomes, the values of the outcome label.
const (
	outcomeSuccess  = "success"
	outcomeFailure  = "failure"
	outcomeTimeout  = "timeout"
	outcomeCanceled = "canceled"
	outcomeInvalid  = "invalid"
	// outcomeRefused counts tasks the flags forbid or a limit refuses.
	outcomeRefused   = "refused"
	outcomeDuplicate = "duplicate"
	outcomeAccepted  = "accepted"
)

// metrics lives in its own registry, so that several servers (as in tests)
// never clash on registration.
type metrics struct {
	registry    *prometheus.Registry
	tasks       *prometheus.CounterVec
	loadLatency prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "serin_tester_tasks_total",
			Help: "Tasks by type and outcome: accepted and duplicate count background starts, the others count finished or refused tasks.",
		}, []string{"type", "outcome"}),
		loadLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "serin_tester_load_request_duration_seconds",
			Help:    "Latency of the requests sent by load tasks, transport errors included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	m.registry.MustRegister(m.tasks, m.loadLatency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *metrics) task(taskType, outcome string) {
	m.tasks.WithLabelValues(taskType, outcome).Inc()
}
