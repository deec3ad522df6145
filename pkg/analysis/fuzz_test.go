package analysis

import (
	"math"
	"strconv"
	"testing"
	"time"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// conditionTimeLimit is far above what any condition takes once the cost
// limit holds (microseconds), and far below a reconcile: a condition that
// gets near it escaped the cost limit.
const conditionTimeLimit = 2 * time.Second

// FuzzCondition compiles and evaluates arbitrary CEL conditions over
// arbitrary results. evalCondition must not panic, must stay within its
// cost limit in time, must give the same answer again (now from the
// compiled-program cache, whose size stays bounded), and a condition it
// accepts must behave as a boolean: its negation, and its use through
// judgeMetric as a successCondition and as a failureCondition, agree with
// it.
func FuzzCondition(f *testing.F) {
	for _, seed := range []struct {
		expr   string
		result float64
	}{
		{"result < 0.5 && result >= 0", 0.2},
		{"result > 100", 101},
		{"result == 1", 1},
		{"result in [200.0, 201.0] || (result > 1.0 && result < 99.0)", 200},
		{"[1.0, 2.0, 3.0].exists(x, result == x)", 2},
		{"result != result", math.NaN()},
		{"result < 1.0 // a comment", 0},
		{"int(result) == 3", 3.7},
		{"string(result) == '1'", 1},
		{"result / 0.0 > 1.0", 1},
		{"result", 1},
		{"result <", 1},
		{"unknown > 1", 1},
		{"[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, result >= 0.0)))", 1},
		{`"a".matches("(a+)+$")`, 1},
		{"size('" + string(make([]byte, 64)) + "') > 1", 1},
		{"math.greatest(result, 1.0) > 0.0", math.Inf(1)},
	} {
		f.Add(seed.expr, seed.result)
	}
	f.Fuzz(func(t *testing.T, expr string, result float64) {
		if len(expr) > 4096 {
			t.Skip("longer than a condition in a Canary")
		}
		if expr == "" {
			t.Skip("an empty condition is no condition")
		}
		start := time.Now()
		got, err := evalCondition(expr, result)
		if d := time.Since(start); d > conditionTimeLimit {
			t.Fatalf("%q took %s, past the cost limit", expr, d)
		}
		again, err2 := evalCondition(expr, result)
		if got != again || (err == nil) != (err2 == nil) {
			t.Fatalf("%q over %v: %v (%v), then %v (%v)", expr, result, got, err, again, err2)
		}
		programsMu.Lock()
		cached := len(programs)
		programsMu.Unlock()
		if cached > maxPrograms {
			t.Fatalf("%d compiled conditions cached, more than %d", cached, maxPrograms)
		}
		if err != nil {
			// A rejected condition makes the metric a configuration error,
			// never a verdict.
			m := serinv1.CanaryMetric{Name: "m", Query: "q", SuccessCondition: expr}
			st, out, jerr := judgeMetric(m, MetricObservation{Value: result}, nil, 3, serinv1.MetricStatus{})
			if jerr == nil || out != inconclusive || st.Verdict == serinv1.MetricPassed || st.Verdict == serinv1.MetricFailed {
				t.Fatalf("condition %q, rejected with %v, judged %v (%s, %v)", expr, err, out, st.Verdict, jerr)
			}
			return
		}
		// The newline ends a trailing // comment before the parenthesis.
		negated, nerr := evalCondition("!(\n"+expr+"\n)", result)
		if nerr != nil || negated == got {
			t.Fatalf("%q is %v over %v, but its negation is %v (%v)", expr, got, result, negated, nerr)
		}
		if math.IsNaN(result) || math.IsInf(result, 0) {
			return // judgeMetric records the value; a bound on it is another question
		}
		success := serinv1.CanaryMetric{Name: "m", Query: "q", SuccessCondition: expr}
		_, out, jerr := judgeMetric(success, MetricObservation{Value: result}, nil, 3, serinv1.MetricStatus{})
		if want := map[bool]outcome{true: passed, false: failedCheck}[got]; jerr != nil || out != want {
			t.Fatalf("successCondition %q over %v (%v): judged %v (%v)", expr, result, got, out, jerr)
		}
		failure := serinv1.CanaryMetric{Name: "m", Query: "q", FailureCondition: expr}
		_, out, jerr = judgeMetric(failure, MetricObservation{Value: result}, nil, 3, serinv1.MetricStatus{})
		if want := map[bool]outcome{true: failedCheck, false: passed}[got]; jerr != nil || out != want {
			t.Fatalf("failureCondition %q over %v (%v): judged %v (%v)", expr, result, got, out, jerr)
		}
	})
}

// FuzzConditionComparison checks comparisons, the conditions users write,
// against Go's float64 comparisons, whatever the bound and the result
// (infinities included).
func FuzzConditionComparison(f *testing.F) {
	f.Add(uint8(0), 0.5, 0.2)
	f.Add(uint8(1), 99.0, 99.0)
	f.Add(uint8(2), -1.0, math.Inf(-1))
	f.Add(uint8(3), 1e300, math.Inf(1))
	f.Add(uint8(4), 5.0, 5.0)
	f.Add(uint8(5), 0.1, 0.1+0.2-0.2)
	ops := []struct {
		op  string
		cmp func(a, b float64) bool
	}{
		{"<", func(a, b float64) bool { return a < b }},
		{"<=", func(a, b float64) bool { return a <= b }},
		{">", func(a, b float64) bool { return a > b }},
		{">=", func(a, b float64) bool { return a >= b }},
		{"==", func(a, b float64) bool { return a == b }},
		{"!=", func(a, b float64) bool { return a != b }},
	}
	f.Fuzz(func(t *testing.T, op uint8, bound, result float64) {
		if math.IsNaN(bound) || math.IsInf(bound, 0) {
			t.Skip("CEL has no literal for NaN or the infinities")
		}
		if math.IsNaN(result) {
			// CEL refuses to order NaN (an evaluation error); the
			// providers turn NaN into no data before any condition runs.
			t.Skip("NaN is no data, never judged")
		}
		o := ops[int(op)%len(ops)]
		// 'g' with -1 precision round-trips every float64; an integral
		// bound is written as CEL writes a double ("5.0", not the int 5)
		// unless it is an exponent form, which CEL reads as a double.
		lit := strconv.FormatFloat(math.Abs(bound), 'g', -1, 64)
		if _, err := strconv.Atoi(lit); err == nil {
			lit += ".0"
		}
		if math.Signbit(bound) {
			lit = "-" + lit
		}
		expr := "result " + o.op + " " + lit
		got, err := evalCondition(expr, result)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		if want := o.cmp(result, bound); got != want {
			t.Fatalf("%q over %v is %v, Go says %v", expr, result, got, want)
		}
	})
}
