package metrics

import (
	"testing"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// Every metric check renders its query; this keeps its cost comparable
// across commits (benchstat).

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
