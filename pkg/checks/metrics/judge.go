package metrics

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// DefaultErrorLimit is how many no-data or error results in a row count as
// one failed check: a backend outage neither rolls back at once nor passes.
const DefaultErrorLimit = 3

// Measurement is what one query returned.
type Measurement struct {
	Value float64
	// NoData: the backend answered without a usable value.
	NoData bool
	// Err: the query failed (backend unreachable, bad query, auth).
	Err error
}

// Judge records a measurement in the metric's status and says whether it
// is a failed check. prev is the metric's status from the previous check of
// the same release, if any. An invalid CEL condition is returned as an error.
func Judge(m serinv1.CanaryMetric, meas Measurement, prev *serinv1.MetricStatus, errorLimit int, now time.Time) (serinv1.MetricStatus, bool, error) {
	if errorLimit < 1 {
		errorLimit = DefaultErrorLimit
	}
	next := serinv1.MetricStatus{Name: m.Name}
	if prev != nil {
		next = *prev.DeepCopy()
		next.Value = nil
	}
	next.Time = metav1.NewTime(now)

	if meas.Err != nil || meas.NoData {
		if meas.Err != nil {
			next.Errors++
			next.Verdict = serinv1.MetricError
			next.Message = meas.Err.Error()
		} else {
			next.NoData++
			next.Verdict = serinv1.MetricNoData
			next.Message = "the query returned no data"
		}
		next.ConsecutiveErrors++
		if next.ConsecutiveErrors >= errorLimit {
			next.Message = fmt.Sprintf("%s (%d in a row: counted as a failed check)", next.Message, next.ConsecutiveErrors)
			next.ConsecutiveErrors = 0
			return next, true, nil
		}
		return next, false, nil
	}

	next.ConsecutiveErrors = 0
	v := meas.Value
	next.Value = &v
	failures, err := violations(m, v)
	if err != nil {
		return next, false, err
	}
	if failures != "" {
		next.Verdict = serinv1.MetricFailed
		next.Message = fmt.Sprintf("%s %s", formatValue(v), failures)
		return next, true, nil
	}
	next.Verdict = serinv1.MetricPassed
	next.Message = fmt.Sprintf("%s is within bounds", formatValue(v))
	return next, false, nil
}

// violations explains why v fails the metric's bounds, or returns "".
func violations(m serinv1.CanaryMetric, v float64) (string, error) {
	if r := m.ThresholdRange; r != nil {
		if r.Min != nil && v < *r.Min {
			return fmt.Sprintf("is below the minimum %s", formatValue(*r.Min)), nil
		}
		if r.Max != nil && v > *r.Max {
			return fmt.Sprintf("is above the maximum %s", formatValue(*r.Max)), nil
		}
	}
	if m.SuccessCondition != "" {
		ok, err := evalCondition(m.SuccessCondition, v)
		if err != nil {
			return "", fmt.Errorf("successCondition: %w", err)
		}
		if !ok {
			return fmt.Sprintf("does not meet successCondition %q", m.SuccessCondition), nil
		}
	}
	if m.FailureCondition != "" {
		bad, err := evalCondition(m.FailureCondition, v)
		if err != nil {
			return "", fmt.Errorf("failureCondition: %w", err)
		}
		if bad {
			return fmt.Sprintf("meets failureCondition %q", m.FailureCondition), nil
		}
	}
	return "", nil
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

var (
	celEnvOnce sync.Once
	celEnv     *cel.Env
	celEnvErr  error
	// programs caches compiled conditions by expression; there are few
	// distinct ones and they are evaluated at every interval.
	programs sync.Map
)

// evalCondition evaluates a CEL expression over `result`. Numbers compare
// across int and double, so "result >= 0" works as users write it.
func evalCondition(expr string, result float64) (bool, error) {
	prg, err := program(expr)
	if err != nil {
		return false, err
	}
	out, _, err := prg.Eval(map[string]any{"result": result})
	if err != nil {
		return false, fmt.Errorf("evaluating %q: %w", expr, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%q does not evaluate to a bool", expr)
	}
	return b, nil
}

func program(expr string) (cel.Program, error) {
	if p, ok := programs.Load(expr); ok {
		return p.(cel.Program), nil
	}
	celEnvOnce.Do(func() {
		celEnv, celEnvErr = cel.NewEnv(cel.Variable("result", cel.DoubleType), cel.CrossTypeNumericComparisons(true))
	})
	if celEnvErr != nil {
		return nil, celEnvErr
	}
	ast, iss := celEnv.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("compiling %q: %w", expr, iss.Err())
	}
	if ast.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("%q is of type %s, not bool", expr, ast.OutputType())
	}
	prg, err := celEnv.Program(ast)
	if err != nil {
		return nil, fmt.Errorf("compiling %q: %w", expr, err)
	}
	programs.Store(expr, prg)
	return prg, nil
}
