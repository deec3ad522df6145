package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCountAudit(t *testing.T) {
	log := strings.Join([]string{
		`{"auditID":"1","stage":"ResponseComplete","verb":"patch","requestURI":"/apis/serin.dev/v1beta1/namespaces/a/canaries/app/status","user":{"username":"ctl"},"objectRef":{"resource":"canaries","apiGroup":"serin.dev","subresource":"status"},"requestReceivedTimestamp":"2026-01-01T00:00:00.300000Z"}`,
		// A watch: counted when it starts, once.
		`{"auditID":"2","stage":"ResponseStarted","verb":"watch","requestURI":"/api/v1/pods?watch=true","user":{"username":"ctl"},"objectRef":{"resource":"pods"},"requestReceivedTimestamp":"2026-01-01T00:00:00.200000Z"}`,
		`{"auditID":"2","stage":"ResponseComplete","verb":"watch","requestURI":"/api/v1/pods?watch=true","user":{"username":"ctl"},"objectRef":{"resource":"pods"},"requestReceivedTimestamp":"2026-01-01T00:00:00.200000Z"}`,
		``,
		`{"auditID":"3","stage":"RequestReceived","verb":"get","requestURI":"/apis?timeout=32s","user":{"username":"ctl"},"requestReceivedTimestamp":"2026-01-01T00:00:01.500000Z"}`,
		`{"auditID":"3","stage":"ResponseComplete","verb":"get","requestURI":"/apis?timeout=32s","user":{"username":"ctl"},"requestReceivedTimestamp":"2026-01-01T00:00:01.500000Z"}`,
		// A refused request: counted, and counted as refused by its code.
		`{"auditID":"4","stage":"ResponseComplete","verb":"patch","requestURI":"/apis/serin.dev/v1beta1/namespaces/b/canaries/app/status","user":{"username":"ctl"},"objectRef":{"resource":"canaries","apiGroup":"serin.dev","subresource":"status"},"responseStatus":{"code":409},"requestReceivedTimestamp":"2026-01-01T00:00:02Z"}`,
		`{"auditID":"5","stage":"ResponseComplete","verb":"create","requestURI":"/api/v1/namespaces/a/pods","user":{"username":"system:kube-controller-manager"},"objectRef":{"resource":"pods"},"requestReceivedTimestamp":"2026-01-01T00:00:00Z"}`,
	}, "\n")
	at := func(ms int) time.Time { return time.Date(2026, 1, 1, 0, 0, 0, ms*int(time.Millisecond), time.UTC) }
	got, err := CountAudit(strings.NewReader(log), "ctl", at(1000))
	if err != nil {
		t.Fatal(err)
	}
	want := AuditCounts{
		Total:       4,
		BeforeSplit: 2,
		ByType: map[string]int{
			"patch canaries.serin.dev/status": 2,
			"watch pods":                      1,
			"get /apis":                       1,
		},
		Refused: map[string]int{"patch canaries.serin.dev/status 409": 1},
		Times:   []time.Time{at(200), at(300), at(1500), at(2000)},
		ByUser:  map[string]int{"ctl": 4, "system:kube-controller-manager": 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CountAudit =\n%+v, want\n%+v", got, want)
	}

	if _, err := CountAudit(strings.NewReader("{not json\n"), "ctl", at(0)); err == nil {
		t.Error("CountAudit of a malformed line: no error")
	}
}

func TestTop(t *testing.T) {
	got := Top(map[string]int{"a": 1, "b": 3, "c": 3, "d": 2}, 3)
	want := []Count{{"b", 3}, {"c", 3}, {"d", 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Top = %v, want %v", got, want)
	}
	if got := Top(map[string]int{"a": 1}, 10); len(got) != 1 {
		t.Errorf("Top of fewer than n = %v", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 250, stime 150.
	stat := "4242 (serin (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 12 0 100 1000000 2000 18446744073709551615"
	got, err := ParseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 4 {
		t.Errorf("ParseStatCPU = %v, want 4", got)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 a b"} {
		if _, err := ParseStatCPU(bad); err == nil {
			t.Errorf("ParseStatCPU(%q): no error", bad)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tserin\nVmPeak:\t  900000 kB\nVmHWM:\t   52344 kB\nVmRSS:\t   51000 kB\n"
	if got, err := ParseStatusKB(status, "VmHWM"); err != nil || got != 52344 {
		t.Errorf("ParseStatusKB(VmHWM) = %v, %v; want 52344", got, err)
	}
	if _, err := ParseStatusKB(status, "VmSwap"); err == nil {
		t.Error("ParseStatusKB of a missing field: no error")
	}
}

func TestPercentile(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {95, 10}, {100, 10}, {10, 1}, {1, 1}} {
		if got := Percentile(values, tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil) = %v, want 0", got)
	}
	if values[0] != 5 {
		t.Error("Percentile sorted its input in place")
	}
}

func TestCountThrottleLines(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"info","logger":"runtime","msg":"Waited before sending request","delay":"1.2s","reason":"client-side throttling, not priority and fairness","verb":"PATCH"}`,
		`I0101 00:00:00.000000 1 request.go:700] Waited for 1.1s due to client-side throttling, not priority and fairness, request: GET:https://x`,
		`{"level":"info","msg":"Canary promoted"}`,
	}, "\n")
	if got, err := CountThrottleLines(strings.NewReader(log)); err != nil || got != 2 {
		t.Errorf("CountThrottleLines = %v, %v; want 2", got, err)
	}
}

func TestPeakPerSecond(t *testing.T) {
	base := time.Unix(100, 0)
	var times []time.Time
	for _, ms := range []int{0, 500, 1000, 1100, 1200, 1999, 2500} {
		times = append(times, base.Add(time.Duration(ms)*time.Millisecond))
	}
	if got := PeakPerSecond(times); got != 4 {
		t.Errorf("PeakPerSecond = %d, want 4", got)
	}
	if got := PeakPerSecond(nil); got != 0 {
		t.Errorf("PeakPerSecond(nil) = %d, want 0", got)
	}
}

func TestEstimateThrottled(t *testing.T) {
	// qps 10, burst 5: a burst of 5 at once empties the bucket, the 5th
	// finding one token. Then the 10 requests paced at the rate, as a
	// limiter releases them, each find one token.
	base := time.Unix(100, 0)
	var times []time.Time
	for range 5 {
		times = append(times, base)
	}
	for i := 1; i <= 10; i++ {
		times = append(times, base.Add(time.Duration(i)*100*time.Millisecond))
	}
	if got := EstimateThrottled(times, 10, 5); got != 11 {
		t.Errorf("EstimateThrottled of a saturated client = %d, want 11", got)
	}
	// Well under the rate, nothing waits.
	var slow []time.Time
	for i := range 20 {
		slow = append(slow, base.Add(time.Duration(i)*time.Second))
	}
	if got := EstimateThrottled(slow, 10, 5); got != 0 {
		t.Errorf("EstimateThrottled of an idle client = %d, want 0", got)
	}
}

func TestReconcileTotals(t *testing.T) {
	metrics := `# HELP controller_runtime_reconcile_total Total number of reconciliations per controller
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="canary",result="error"} 3
controller_runtime_reconcile_total{controller="canary",result="requeue_after"} 120
controller_runtime_reconcile_total{controller="canary",result="success"} 40
controller_runtime_reconcile_total{controller="other",result="success"} 2
controller_runtime_reconcile_errors_total{controller="canary"} 3
`
	want := map[string]float64{"error": 3, "requeue_after": 120, "success": 42}
	if got := ReconcileTotals(metrics); !reflect.DeepEqual(got, want) {
		t.Errorf("ReconcileTotals = %v, want %v", got, want)
	}
}

func TestRatios(t *testing.T) {
	a := &Result{Canaries: 10, Machine: Machine{CPUs: 2}, Promotion: Latencies{P95: 40}, Requests: Requests{Total: 100, TopTypes: []Count{{"get x", 3}}}}
	b := &Result{Canaries: 10, Machine: Machine{CPUs: 2}, Promotion: Latencies{P95: 30}, Requests: Requests{Total: 50, TopTypes: []Count{{"get x", 1}}}}
	got := Ratios(a, b)
	for k, want := range map[string]float64{"canaries": 1, "promotion.p95": 0.75, "requests.total": 0.5} {
		if got[k] != want {
			t.Errorf("Ratios[%s] = %v, want %v", k, got[k], want)
		}
	}
	if _, ok := got["promotion.max"]; ok {
		t.Error("Ratios divided by zero")
	}
	if _, ok := got["machine.cpus"]; ok {
		t.Error("Ratios compared the machines")
	}
}
