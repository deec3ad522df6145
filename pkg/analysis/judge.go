package analysis

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// DefaultErrorLimit is how many intervals in a row a check may go without a
// verdict before that counts as one failed check: a backend outage neither
// rolls back at once nor ever passes.
const DefaultErrorLimit = 3

// MetricObservation is what one metric query returned. The checks only
// observe; Decide judges.
type MetricObservation struct {
	// Name of the metric check.
	Name string
	// Value measured, when there was one.
	Value float64
	// NoData: the backend answered without a usable value.
	NoData bool
	// Err says why the query failed (backend unreachable, bad query, auth);
	// empty when it did not.
	Err string
}

// WebhookObservation is what one webhook call returned, retries included.
type WebhookObservation struct {
	// Name and Type of the webhook.
	Name string
	Type serinv1.HookType
	// StatusCode of the answer; 0 when the webhook did not answer.
	StatusCode int
	// Err says why no answer came (connection refused, timeout) or why the
	// answer was refused; empty on a 2xx answer.
	Err string
	// Body is an excerpt of the answer, for messages.
	Body string
}

// Answered is true when the webhook sent an HTTP answer, whatever its code.
func (o WebhookObservation) Answered() bool { return o.StatusCode != 0 }

// OK is true when the webhook accepted the call (200-202, as in Flagger).
func (o WebhookObservation) OK() bool {
	return o.StatusCode >= 200 && o.StatusCode <= 202 && o.Err == ""
}

// outcome is a judged check.
type outcome int

const (
	passed outcome = iota
	failedCheck
	// inconclusive: no verdict this interval (no data, query error, no
	// answer). The step holds.
	inconclusive
)

// judgeMetric records an observation in the metric's status and judges it.
// prev is the metric's status from the previous interval of the same
// release, if any. A no-data or error result is inconclusive; the limit-th
// in a row is a failed check. An invalid CEL condition is returned as an
// error.
func judgeMetric(m serinv1.CanaryMetric, obs MetricObservation, prev *serinv1.MetricStatus, limit int, st serinv1.MetricStatus) (serinv1.MetricStatus, outcome, error) {
	next := st
	if prev != nil {
		next.NoData, next.Errors, next.ConsecutiveErrors = prev.NoData, prev.Errors, prev.ConsecutiveErrors
	}
	if obs.Err != "" || obs.NoData {
		if obs.Err != "" {
			next.Errors++
			next.Verdict = serinv1.MetricError
			next.Message = obs.Err
		} else {
			next.NoData++
			next.Verdict = serinv1.MetricNoData
			next.Message = "the query returned no data"
		}
		next.ConsecutiveErrors++
		if next.ConsecutiveErrors >= limit {
			next.Message = fmt.Sprintf("%s (%d in a row: counted as a failed check)", next.Message, next.ConsecutiveErrors)
			next.ConsecutiveErrors = 0
			return next, failedCheck, nil
		}
		return next, inconclusive, nil
	}

	next.ConsecutiveErrors = 0
	v := obs.Value
	next.Value = &v
	failures, err := violations(m, v)
	if err != nil {
		return next, inconclusive, err
	}
	if failures != "" {
		next.Verdict = serinv1.MetricFailed
		next.Message = fmt.Sprintf("%s %s", formatValue(v), failures)
		return next, failedCheck, nil
	}
	next.Verdict = serinv1.MetricPassed
	next.Message = fmt.Sprintf("%s is within bounds", formatValue(v))
	return next, passed, nil
}

// judgeWebhook records a pre-rollout or rollout webhook's call in its status
// and judges it: a 2xx answer passes, another answer fails (as in Flagger),
// and no answer is inconclusive until the limit-th in a row.
func judgeWebhook(obs WebhookObservation, prev *serinv1.WebhookStatus, limit int, st serinv1.WebhookStatus) (serinv1.WebhookStatus, outcome) {
	next := st
	if prev != nil {
		next.Errors, next.ConsecutiveErrors = prev.Errors, prev.ConsecutiveErrors
	}
	next.StatusCode = obs.StatusCode
	switch {
	case obs.OK():
		next.ConsecutiveErrors = 0
		next.Verdict = serinv1.MetricPassed
		next.Message = fmt.Sprintf("answered %d", obs.StatusCode)
		return next, passed
	case obs.Answered():
		next.ConsecutiveErrors = 0
		next.Verdict = serinv1.MetricFailed
		next.Message = fmt.Sprintf("answered %d", obs.StatusCode)
		if obs.Err != "" {
			next.Message = obs.Err
		}
		return next, failedCheck
	}
	next.Errors++
	next.ConsecutiveErrors++
	next.Verdict = serinv1.MetricError
	next.Message = "no answer: " + obs.Err
	if next.ConsecutiveErrors >= limit {
		next.Message = fmt.Sprintf("%s (%d in a row: counted as a failed check)", next.Message, next.ConsecutiveErrors)
		next.ConsecutiveErrors = 0
		return next, failedCheck
	}
	return next, inconclusive
}

// violations explains why v fails the metric's bounds, or returns "".
func violations(m serinv1.CanaryMetric, v float64) (string, error) {
	if r := m.Bounds(); r != nil {
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

// celCostLimit bounds the evaluation of one condition. A condition over one
// double needs a few dozen units; nested comprehensions that would take
// seconds are stopped instead of holding a reconcile worker.
const celCostLimit = 10_000

// celEvalTimeout bounds one evaluation in time.
const celEvalTimeout = 100 * time.Millisecond

// noSizes gives the cost estimator no sizes: a condition's only variable is
// a double, and every list in it is a literal whose size CEL knows.
type noSizes struct{}

func (noSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }
func (noSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// maxPrograms bounds the compiled-condition cache: conditions come from
// user specs, so their number is not ours to choose.
const maxPrograms = 1024

var (
	celEnvOnce sync.Once
	celEnv     *cel.Env
	celEnvErr  error

	programsMu sync.Mutex
	// programs caches compiled conditions by expression; they are
	// evaluated at every interval.
	programs = map[string]cel.Program{}
)

// evalCondition evaluates a CEL expression over `result`. Numbers compare
// across int and double, so "result >= 0" works as users write it.
func evalCondition(expr string, result float64) (bool, error) {
	prg, err := program(expr)
	if err != nil {
		return false, err
	}
	// The cost limit stops a runaway evaluation; the deadline stops one the
	// cost model underrates.
	ctx, cancel := context.WithTimeout(context.Background(), celEvalTimeout)
	defer cancel()
	out, _, err := prg.ContextEval(ctx, map[string]any{"result": result})
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
	programsMu.Lock()
	p, ok := programs[expr]
	programsMu.Unlock()
	if ok {
		return p, nil
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
	// A condition whose worst case exceeds the limit is refused at compile
	// time, before it runs; its Stalled condition names it.
	if est, err := celEnv.EstimateCost(ast, noSizes{}); err != nil || est.Max > celCostLimit {
		return nil, fmt.Errorf("%q may cost more than the limit of %d to evaluate; simplify it", expr, celCostLimit)
	}
	prg, err := celEnv.Program(ast, cel.CostLimit(celCostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("compiling %q: %w", expr, err)
	}
	programsMu.Lock()
	if len(programs) >= maxPrograms {
		// Dropping everything is simpler than an LRU and costs only
		// recompiles; a cluster rarely has this many distinct conditions.
		clear(programs)
	}
	programs[expr] = prg
	programsMu.Unlock()
	return prg, nil
}
