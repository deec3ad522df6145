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
		Checks: &CheckResults{GateOpen: true, Metrics: []serinv1.MetricStatus{{Name: serinv1.MetricRequestSuccessRate, Verdict: serinv1.MetricPassed, Time: at(now)}}},
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
