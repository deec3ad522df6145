package metrics

import (
	"testing"
	"time"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// Every metric check renders its query and judges the value; these keep
// their cost comparable across commits (benchstat).

func BenchmarkRenderBuiltinQuery(b *testing.B) {
	tmpl, _ := BuiltinQuery(serinv1.ProviderIstio, serinv1.MetricRequestSuccessRate)
	vars := Vars{Name: "podinfo", Namespace: "apps", Target: "podinfo", Service: "podinfo", Interval: "1m"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(tmpl, vars); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJudgeThresholdRange(b *testing.B) {
	m := serinv1.CanaryMetric{Name: serinv1.MetricRequestSuccessRate, ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Judge(m, Measurement{Value: 99.5}, nil, DefaultErrorLimit, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJudgeCEL(b *testing.B) {
	m := serinv1.CanaryMetric{Name: "errors", Query: "x", SuccessCondition: "result < 1.5"}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Judge(m, Measurement{Value: 0.5}, nil, DefaultErrorLimit, now); err != nil {
			b.Fatal(err)
		}
	}
}
