package flags

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Resolution reasons, as flagd reports them.
const (
	ReasonStatic         = "STATIC"
	ReasonDefault        = "DEFAULT"
	ReasonTargetingMatch = "TARGETING_MATCH"
	ReasonDisabled       = "DISABLED"
	ReasonError          = "ERROR"
)

// Error codes of an evaluation that fails, as flagd reports them.
const (
	ErrorFlagNotFound = "FLAG_NOT_FOUND"
	ErrorParse        = "PARSE_ERROR"
	ErrorGeneral      = "GENERAL"
)

// Limits on one evaluation, so that a hostile or broken document cannot
// hang the caller: how deeply rules nest, how many operations and values
// one evaluation may visit, and how long a string it may build.
const (
	maxEvalDepth   = 512
	maxEvalSteps   = 200_000
	maxStringBytes = 1 << 20
)

// Result is how a flag resolves for one evaluation context. Variant is ""
// (and Value nil) when the caller gets its code default: the flag is
// DISABLED, or resolves no variant (Reason DEFAULT), or the evaluation
// failed (Reason ERROR, with an *EvalError).
type Result struct {
	Variant string
	// Value is the variant's value as JSON decodes it (numbers are
	// float64).
	Value  any
	Reason string
}

// CodeDefault tells whether the caller gets its code default.
func (r Result) CodeDefault() bool { return r.Variant == "" }

// EvalError is why an evaluation gives Reason ERROR; Code is flagd's
// error code (FLAG_NOT_FOUND, PARSE_ERROR or GENERAL).
type EvalError struct {
	Flag string
	Code string
	Err  error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("flag %q: %s: %v", e.Flag, e.Code, e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

// Evaluate parses a flags document and evaluates one of its flags for an
// evaluation context; see Document.Evaluate.
func Evaluate(doc []byte, flagKey string, ctx map[string]any) (Result, error) {
	d, err := Parse(doc)
	if err != nil {
		return Result{Reason: ReasonError}, err
	}
	return d.Evaluate(flagKey, ctx)
}

// Evaluate resolves the flag for an evaluation context as flagd does
// (flagd-core 4 is the reference):
//
//   - No such flag: ERROR (FLAG_NOT_FOUND).
//   - DISABLED: the code default, reason DISABLED.
//   - No targeting (or {}): the defaultVariant, reason STATIC; a null
//     defaultVariant gives the code default, reason DEFAULT.
//   - Targeting: the rule runs over the context plus flagd's injected
//     "$flagd": {"flagKey": key, "timestamp": unix seconds}. A null result
//     gives the defaultVariant (or the code default), reason DEFAULT; any
//     other result is turned into a string as JavaScript does (true ->
//     "true", 1 -> "1") and names the variant, reason TARGETING_MATCH. A
//     name that is no variant, or a rule that fails, is ERROR (GENERAL).
//   - A rule with a part that fails whatever the context (say {"/": [1,
//     0]}, even in a branch never taken) is ERROR (PARSE_ERROR) for every
//     context: flagd-core evaluates such parts when it compiles the rule.
//
// The context's values are what JSON decodes to (maps, slices, strings,
// float64, bool, nil); other Go numbers and types are converted. The
// evaluation is bounded (nesting depth, operations, string length): a rule
// past a bound fails with ERROR rather than running on.
func (d *Document) Evaluate(flagKey string, ctx map[string]any) (Result, error) {
	return d.evaluateAt(flagKey, ctx, time.Now())
}

func (d *Document) evaluateAt(flagKey string, ctx map[string]any, now time.Time) (Result, error) {
	fail := func(code string, err error) (Result, error) {
		return Result{Reason: ReasonError}, &EvalError{Flag: flagKey, Code: code, Err: err}
	}
	def := d.definition(flagKey)
	if def == nil {
		return fail(ErrorFlagNotFound, errors.New("no such flag"))
	}
	if def.State == StateDisabled {
		return Result{Reason: ReasonDisabled}, nil
	}
	if err := d.ruleErrs[flagKey]; err != nil {
		return fail(ErrorParse, fmt.Errorf("targeting: %w", err))
	}
	dv, _ := def.DefaultVariant.(string)
	variant, reason := dv, ReasonStatic
	if def.Targeting != nil {
		data, err := contextData(ctx)
		if err != nil {
			return fail(ErrorGeneral, err)
		}
		data["$flagd"] = map[string]any{"flagKey": flagKey, "timestamp": float64(now.Unix())}
		e := &evaluator{}
		out, err := e.eval(def.Targeting, data, 0)
		if err != nil {
			return fail(ErrorGeneral, fmt.Errorf("targeting: %w", err))
		}
		if out == nil {
			reason = ReasonDefault
		} else {
			variant, reason = jsString(out), ReasonTargetingMatch
		}
	}
	if variant == "" && dv == "" {
		// No variant and no default variant: the code default. (A variant
		// named "" cannot be: Parse refuses empty names.)
		return Result{Reason: ReasonDefault}, nil
	}
	value, ok := def.Variants[variant]
	if !ok {
		return fail(ErrorGeneral, fmt.Errorf("variant %q not found", variant))
	}
	return Result{Variant: variant, Value: canonicalValue(value), Reason: reason}, nil
}

// contextData copies an evaluation context into the values JSON decodes
// to, so that the evaluator sees one representation.
func contextData(ctx map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(ctx)+1)
	for k, v := range ctx {
		n, err := normalize(v, 0)
		if err != nil {
			return nil, fmt.Errorf("context %q: %w", k, err)
		}
		out[k] = n
	}
	return out, nil
}

func normalize(v any, depth int) (any, error) {
	if depth > maxEvalDepth {
		return nil, errors.New("nested too deeply")
	}
	switch x := v.(type) {
	case nil, bool, string, float64:
		return v, nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return f, nil
	case int:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint:
		return float64(x), nil
	case uint32:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float32:
		return float64(x), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	}
	// Anything else ([]string, structs, ...) as its JSON.
	rv := reflect.ValueOf(v)
	if (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice) && rv.IsNil() {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %w", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// jsNumber formats a number as JavaScript's Number#toString does.
func jsNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	// Shortest digits that round-trip, and the decimal exponent.
	s := strconv.FormatFloat(f, 'e', -1, 64) // d[.ddd]e±XX
	mant, expText, _ := strings.Cut(s, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expText)
	k := len(digits)
	n := exp + 1 // position of the decimal point
	switch {
	case k <= n && n <= 21:
		return sign + digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return sign + digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return sign + "0." + strings.Repeat("0", -n) + digits
	}
	e := n - 1
	es := fmt.Sprintf("e+%d", e)
	if e < 0 {
		es = fmt.Sprintf("e-%d", -e)
	}
	if k == 1 {
		return sign + digits + es
	}
	return sign + digits[:1] + "." + digits[1:] + es
}
