package analysis

import (
	"testing"
	"time"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// The decision runs on every reconcile of every Canary; these keep its cost
// comparable across commits (go test -bench . -count 10 | benchstat).

func BenchmarkDecideIdle(b *testing.B) {
	in := Input{Spec: canarySpec(metric), Status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), Now: t0.Add(now), Revision: "rev2", Primary: ready, Canary: ready}
	b.ReportAllocs()
	for b.Loop() {
		Decide(in)
	}
}

func BenchmarkDecideStep(b *testing.B) {
	spec := canarySpec(metric, hook(serinv1.RolloutHook), hook(serinv1.ConfirmTrafficIncreaseHook))
	in := Input{
		Spec: spec, Status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), Now: t0.Add(now),
		Revision: "rev2", Primary: ready, Canary: ready,
		Checks: &CheckResults{
			Webhooks: []WebhookObservation{
				{Name: string(serinv1.RolloutHook), Type: serinv1.RolloutHook, StatusCode: 200},
				{Name: string(serinv1.ConfirmTrafficIncreaseHook), Type: serinv1.ConfirmTrafficIncreaseHook, StatusCode: 200},
			},
			Metrics: []MetricObservation{{Name: serinv1.MetricRequestSuccessRate, Value: 99.5}},
		},
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(in)
	}
}

func BenchmarkWeightSchedule(b *testing.B) {
	a := serinv1.CanaryAnalysis{Interval: "1m", StepWeight: 5, MaxWeight: 95}
	b.ReportAllocs()
	for b.Loop() {
		Schedule(a)
	}
}

func BenchmarkUntilNextStep(b *testing.B) {
	spec, st := canarySpec(), status(serinv1.CanaryPhaseProgressing)
	at := t0.Add(now)
	b.ReportAllocs()
	for b.Loop() {
		UntilNextStep(spec, st, at.Add(time.Second))
	}
}

func BenchmarkJudgeThresholdRange(b *testing.B) {
	m := serinv1.CanaryMetric{Name: serinv1.MetricRequestSuccessRate, ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := judgeMetric(m, MetricObservation{Value: 99.5}, nil, DefaultErrorLimit, serinv1.MetricStatus{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJudgeCEL(b *testing.B) {
	m := serinv1.CanaryMetric{Name: "errors", Query: "x", SuccessCondition: "result < 1.5"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := judgeMetric(m, MetricObservation{Value: 0.5}, nil, DefaultErrorLimit, serinv1.MetricStatus{}); err != nil {
			b.Fatal(err)
		}
	}
}
