package flags

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
)

// The JSONLogic evaluator follows flagd-core 4 (json-logic-engine 5 with
// flagd's operators) where it differs from other JSONLogic engines:
//
//   - var: a null value is missing (the default applies); a dotted path
//     walks objects, arrays (by index) and strings ("length", index).
//   - == != < <= > >=: two strings (or null) compare as JavaScript does;
//     otherwise both sides must be numbers or numeric text (an object, an
//     array or non-numeric text fails), and null == 0, 0 == null. More
//     than two arguments chain (a < b < c).
//   - === !==: JavaScript's strict equality; an array or object is equal
//     to nothing.
//   - cat: each argument as JavaScript turns it into text (null ->
//     "null", 1.0 -> "1").
//   - in: a substring test on a string (the needle as text), a strict
//     membership test on an array, false on null, "", 0 or false, and a
//     failure on anything else.
//   - and, or: the deciding value (not a boolean); with no arguments null.
//   - if: if/then/else-if chains; a missing else is null.
//   - fractional, starts_with, ends_with, sem_ver: as flagd documents them;
//     a malformed call is null, not a failure.
//
// A failing operation fails the evaluation (flagd: ERROR, GENERAL). Like
// flagd-core, the evaluator also evaluates each part of a rule that does
// not depend on the context once, up front (checkConstants): one that
// fails makes the flag PARSE_ERROR. Inside an if of fewer than three
// arguments flagd-core interprets rather than compiles, and the evaluator
// follows its interpreter there (see interpreted).
//
// Not copied from flagd-core: faults of its generated code, where a
// comparison whose later operand is an expression (not a literal) checks
// that operand against the wrong value, and where a var default, cat or
// or/and expression loses its parentheses (so {"cat": ["a", {"or": [...]}]}
// returns the or's value). Go evaluates those as written.

var errInvalidArguments = errors.New("invalid arguments")

// opError names the operation that failed.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// undefined stands for JavaScript's undefined where it differs from null
// (a missing argument of substr).
type undefinedT struct{}

var undefined any = undefinedT{}

type evaluator struct {
	steps int
	// eager evaluates every argument of ! and !!, as flagd-core does when
	// it folds a constant rule.
	eager bool
	// interp is set inside an if of fewer than three arguments: flagd-core
	// does not compile it but interprets it, with json-logic-engine's
	// interpreter semantics (see interpreted).
	interp bool
}

// interpreted tells whether a rule runs in flagd-core's interpreter, which
// differs from its compiled code: cat skips null, var keeps a null value
// (its default is for a missing one), ! and !! evaluate every argument,
// and loose comparisons convert both sides to numbers (no null == 0).
func (e *evaluator) interpreted() bool { return e.interp || e.eager }

func (e *evaluator) step(n int) error {
	e.steps += n
	if e.steps > maxEvalSteps {
		return fmt.Errorf("evaluation exceeds %d steps", maxEvalSteps)
	}
	return nil
}

// eval evaluates a JSONLogic rule over data (the evaluation context, or an
// element inside map, filter, ...).
func (e *evaluator) eval(rule any, data any, depth int) (any, error) {
	if depth > maxEvalDepth {
		return nil, fmt.Errorf("rule nested deeper than %d", maxEvalDepth)
	}
	if err := e.step(1); err != nil {
		return nil, err
	}
	switch x := rule.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return f, nil
	case int:
		return float64(x), nil
	case []any:
		out := make([]any, len(x))
		for i, r := range x {
			v, err := e.eval(r, data, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case map[string]any:
		if len(x) == 0 {
			return x, nil
		}
		if len(x) != 1 {
			return nil, fmt.Errorf("an object with keys %v is not an operation", sortedKeys(x))
		}
		for op, args := range x {
			v, err := e.op(op, args, data, depth+1)
			var oe *opError
			if err != nil && !errors.As(err, &oe) {
				err = &opError{op, err}
			}
			return v, err
		}
	}
	return rule, nil
}

// args evaluates the arguments of an operation that takes evaluated
// arguments: a literal array's elements, or a single value (an array
// result is the argument list).
func (e *evaluator) args(args any, data any, depth int) ([]any, error) {
	v, err := e.eval(args, data, depth)
	if err != nil {
		return nil, err
	}
	if a, ok := v.([]any); ok {
		return a, nil
	}
	return []any{v}, nil
}

func arg(a []any, i int) any {
	if i < len(a) {
		return a[i]
	}
	return undefined
}

func (e *evaluator) op(op string, args any, data any, depth int) (any, error) {
	switch op {
	case "var":
		return e.opVar(args, data, depth)
	case "if", "?:":
		a, ok := args.([]any)
		if !ok {
			return nil, errInvalidArguments
		}
		if len(a) < 3 && !e.interp {
			e.interp = true
			defer func() { e.interp = false }()
		}
		if len(a) == 1 {
			return e.eval(a[0], data, depth)
		}
		for i := 0; i+1 < len(a); i += 2 {
			c, err := e.eval(a[i], data, depth)
			if err != nil {
				return nil, err
			}
			if truthy(c) {
				return e.eval(a[i+1], data, depth)
			}
		}
		if len(a)%2 == 1 {
			return e.eval(a[len(a)-1], data, depth)
		}
		return nil, nil
	case "and", "or":
		a, ok := args.([]any)
		if !ok {
			return nil, errInvalidArguments
		}
		var item any
		for _, r := range a {
			v, err := e.eval(r, data, depth)
			if err != nil {
				return nil, err
			}
			item = v
			if truthy(v) == (op == "or") {
				return v, nil
			}
		}
		return item, nil
	case "!", "!!":
		var v any
		var err error
		if a, ok := args.([]any); ok {
			if e.interpreted() {
				// Evaluated as flagd-core interprets: every argument.
				_, err = e.eval(a, data, depth)
			}
			if len(a) > 0 && err == nil {
				v, err = e.eval(a[0], data, depth)
			}
		} else {
			v, err = e.eval(args, data, depth)
		}
		if err != nil {
			return nil, err
		}
		return truthy(v) == (op == "!!"), nil
	case "==", "===", "!=", "!==", "<", "<=", ">", ">=":
		return e.compare(op, args, data, depth)
	case "in":
		if lit, ok := args.([]any); ok && len(lit) > 2 && !e.interpreted() {
			args = lit[:2] // compiled, in reads its first two arguments only
		}
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		item, in := arg(a, 0), arg(a, 1)
		if item == undefined {
			item = nil
		}
		if jsFalsy(in) {
			return false, nil
		}
		switch c := in.(type) {
		case string:
			return strings.Contains(c, jsString(item)), nil
		case []any:
			if err := e.step(len(c)); err != nil {
				return nil, err
			}
			for _, x := range c {
				if strictEqual(x, item) {
					return true, nil
				}
			}
			return false, nil
		}
		return nil, fmt.Errorf("cannot search in %s", kind(in))
	case "cat":
		return e.cat(args, data, depth)
	case "substr":
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		return substr(arg(a, 0), arg(a, 1), arg(a, 2))
	case "starts_with", "ends_with":
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		if len(a) != 2 {
			return nil, nil
		}
		s, ok1 := a[0].(string)
		p, ok2 := a[1].(string)
		if !ok1 || !ok2 {
			return nil, nil
		}
		if op == "starts_with" {
			return strings.HasPrefix(s, p), nil
		}
		return strings.HasSuffix(s, p), nil
	case "sem_ver":
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		return semVerOp(a), nil
	case "fractional":
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		return fractional(a, data), nil
	case "+", "-", "*", "/", "%":
		if _, isOp := args.(map[string]any); isOp && op != "+" && op != "-" {
			// flagd-core reduces the operation's result: it must be an
			// array.
			v, err := e.eval(args, data, depth)
			if err != nil {
				return nil, err
			}
			a, ok := v.([]any)
			if !ok {
				return nil, errInvalidArguments
			}
			return arithmetic(op, a)
		}
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		return arithmetic(op, a)
	case "max", "min":
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		if len(a) == 0 {
			return nil, errInvalidArguments
		}
		best := math.NaN()
		for i, x := range a {
			f, ok := x.(float64)
			if !ok {
				return nil, errInvalidArguments
			}
			if i == 0 || (op == "max" && f > best) || (op == "min" && f < best) {
				best = f
			}
		}
		return best, nil
	case "merge":
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		var out []any
		for _, x := range a {
			if inner, ok := x.([]any); ok {
				if err := e.step(len(inner)); err != nil {
					return nil, err
				}
				out = append(out, inner...)
			} else {
				out = append(out, x)
			}
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	case "missing":
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		return missing(a, data), nil
	case "missing_some":
		a, err := e.args(args, data, depth)
		if err != nil {
			return nil, err
		}
		need, ok1 := arg(a, 0).(float64)
		keys, ok2 := arg(a, 1).([]any)
		if !ok1 || !ok2 {
			return nil, errInvalidArguments
		}
		m := missing(keys, data)
		if float64(len(keys)-len(m)) >= need {
			return []any{}, nil
		}
		return m, nil
	case "map", "filter", "all", "some", "none", "reduce":
		return e.iterate(op, args, data, depth)
	}
	return nil, fmt.Errorf("unknown operator %q", op)
}

// varCompiled tells whether flagd-core compiles a var: a literal key
// (string, number or null), alone or with a default.
func varCompiled(args any) bool {
	key := args
	if a, ok := args.([]any); ok {
		if len(a) > 2 {
			return false
		}
		key = arg(a, 0)
	}
	switch key.(type) {
	case nil, string, json.Number, float64, int, undefinedT:
		return true
	}
	return false
}

func (e *evaluator) opVar(args any, data any, depth int) (any, error) {
	// [key, default] with a literal key: the default is evaluated only
	// when it is needed (flagd-core compiles it behind "??"). Otherwise the
	// argument is evaluated, and an array result is [key, default].
	var key, dflt any
	lazy := false
	var dfltRule any
	compiled := !e.interpreted() && varCompiled(args)
	if a, ok := args.([]any); ok && compiled && len(a) > 0 {
		key, lazy = a[0], true
		if len(a) > 1 {
			dfltRule = a[1]
		}
		if n, ok := key.(json.Number); ok {
			key = n.String()
		}
	} else {
		v, err := e.eval(args, data, depth)
		if err != nil {
			return nil, err
		}
		if a, ok := v.([]any); ok {
			key, dflt = arg(a, 0), arg(a, 1)
			if key == undefined {
				key = nil
			}
			if dflt == undefined {
				dflt = nil
			}
		} else {
			key = v
		}
	}
	fallback := func() (any, error) {
		if lazy && dfltRule != nil {
			return e.eval(dfltRule, data, depth)
		}
		return dflt, nil
	}
	if key == nil || key == "" {
		return data, nil
	}
	parts := splitPath(jsString(key))
	if err := e.step(len(parts)); err != nil {
		return nil, err
	}
	cur := data
	for _, p := range parts {
		var ok bool
		if cur, ok = property(cur, p); !ok {
			return fallback()
		}
	}
	if cur == nil && compiled {
		return fallback()
	}
	return cur, nil
}

// property is v[name] as JavaScript reads it from a JSON value; false
// when it is undefined.
func property(v any, name string) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		p, ok := x[name]
		return p, ok
	case []any:
		if name == "length" {
			return float64(len(x)), true
		}
		if i, ok := arrayIndex(name); ok && i < len(x) {
			return x[i], true
		}
	case string:
		u := utf16.Encode([]rune(x))
		if name == "length" {
			return float64(len(u)), true
		}
		if i, ok := arrayIndex(name); ok && i < len(u) {
			return string(utf16.Decode(u[i : i+1])), true
		}
	}
	return nil, false
}

// arrayIndex reads a canonical array index ("0", "12", not "01" or "-1").
func arrayIndex(s string) (int, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// splitPath splits a var path at dots; a backslash escapes a dot (or a
// slash, or itself).
func splitPath(s string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '.' || s[i+1] == '/' || s[i+1] == '\\'):
			cur.WriteByte(s[i+1])
			i++
		case c == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	// "." is [""], not ["", ""] (as flagd-core splits).
	if len(parts) != len(s) {
		parts = append(parts, cur.String())
	}
	return parts
}

func (e *evaluator) compare(op string, args any, data any, depth int) (any, error) {
	a, ok := args.([]any)
	if !ok || len(a) < 2 {
		return nil, errInvalidArguments
	}
	strict := op == "===" || op == "!=="
	prev, err := e.eval(a[0], data, depth)
	if err != nil {
		return nil, err
	}
	if e.interpreted() {
		return e.compareInterpreted(op, strict, prev, a[1:], data, depth)
	}
	for _, r := range a[1:] {
		cur, err := e.eval(r, data, depth)
		if err != nil {
			return nil, err
		}
		if cur, err = compareCheck(cur, prev, strict); err != nil {
			return nil, err
		}
		if !jsCompare(op, prev, cur) {
			return false, nil
		}
		prev = cur
	}
	return true, nil
}

var errNaN = errors.New("not a number")

// compareCheck is flagd-core's check of a loose comparison's operands:
// unless both are strings or null, both must be numbers (or numeric text,
// booleans, null); it returns the right operand, with null == 0 and
// 0 == null made true.
func compareCheck(item, prev any, strict bool) (any, error) {
	if strict || (isStringOrNull(item) && isStringOrNull(prev)) {
		return item, nil
	}
	if isObject(item) || isObject(prev) {
		return nil, errNaN
	}
	if math.IsNaN(toNumber(item)) && prev != nil {
		return nil, errNaN
	}
	if math.IsNaN(toNumber(prev)) {
		return nil, errNaN
	}
	if prev == nil && jsFalsy(item) {
		return nil, nil
	}
	if item == nil && jsFalsy(prev) {
		return 0.0, nil
	}
	return item, nil
}

func isStringOrNull(v any) bool {
	_, ok := v.(string)
	return ok || v == nil
}

func isObject(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// jsCompare is JavaScript's a OP b on JSON values.
func jsCompare(op string, a, b any) bool {
	switch op {
	case "===":
		return strictEqual(a, b)
	case "!==":
		return !strictEqual(a, b)
	case "==":
		return looseEqual(a, b)
	case "!=":
		return !looseEqual(a, b)
	}
	var c int
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		c = compareUTF16(as, bs)
	} else {
		x, y := toNumber(a), toNumber(b)
		if math.IsNaN(x) || math.IsNaN(y) {
			return false
		}
		switch {
		case x < y:
			c = -1
		case x > y:
			c = 1
		}
	}
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

func strictEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	}
	// Arrays and objects are equal only to themselves, and every value
	// here is a fresh one.
	return false
}

func looseEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if isObject(a) || isObject(b) {
		return false
	}
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		return as == bs
	}
	return toNumber(a) == toNumber(b)
}

func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

// truthy is JavaScript's truthiness, except that an empty array or object
// is false (as in JSONLogic).
func truthy(v any) bool {
	switch x := v.(type) {
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return !jsFalsy(v)
}

// jsFalsy is JavaScript's falsiness: null, false, 0, NaN and "".
func jsFalsy(v any) bool {
	switch x := v.(type) {
	case nil, undefinedT:
		return true
	case bool:
		return !x
	case float64:
		return x == 0 || math.IsNaN(x)
	case string:
		return x == ""
	}
	return false
}

// toNumber is JavaScript's Number(v) for JSON values.
func toNumber(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case string:
		return stringToNumber(x)
	case []any:
		switch len(x) {
		case 0:
			return 0
		case 1:
			return toNumber(jsString(x[0]))
		}
	}
	return math.NaN()
}

var decimalText = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

func stringToNumber(s string) float64 {
	s = strings.TrimFunc(s, func(r rune) bool {
		return r == '\uFEFF' || strings.ContainsRune(" \t\n\v\f\r\u00a0\u1680\u2028\u2029\u202f\u205f\u3000", r) || (r >= '\u2000' && r <= '\u200a')
	})
	switch s {
	case "":
		return 0
	case "Infinity", "+Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			f := 0.0
			for _, c := range s[2:] {
				d, err := strconv.ParseUint(string(c), base, 8)
				if err != nil {
					return math.NaN()
				}
				f = f*float64(base) + float64(d)
			}
			return f
		}
	}
	if !decimalText.MatchString(s) {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return math.NaN()
	}
	return f
}

// jsString is JavaScript's String(v) for JSON values.
func jsString(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case undefinedT:
		return "undefined"
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return jsNumber(x)
	case json.Number:
		f, _ := x.Float64()
		return jsNumber(f)
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			if e != nil {
				parts[i] = jsString(e)
			}
		}
		return strings.Join(parts, ",")
	case map[string]any:
		return "[object Object]"
	}
	return fmt.Sprint(v)
}

func (e *evaluator) cat(args any, data any, depth int) (any, error) {
	var b strings.Builder
	add := func(s string) error {
		if b.Len()+len(s) > maxStringBytes {
			return fmt.Errorf("result longer than %d bytes", maxStringBytes)
		}
		b.WriteString(s)
		return nil
	}
	if a, ok := args.([]any); ok {
		for _, r := range a {
			v, err := e.eval(r, data, depth)
			if err != nil {
				return nil, err
			}
			if v == nil && e.interpreted() {
				continue
			}
			if err := add(jsString(v)); err != nil {
				return nil, err
			}
		}
		return b.String(), nil
	}
	v, err := e.eval(args, data, depth)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil:
		return nil, errors.New("cannot turn null into text")
	case []any:
		for _, el := range x {
			if el != nil {
				if err := add(jsString(el)); err != nil {
					return nil, err
				}
			}
		}
		return b.String(), nil
	}
	s := jsString(v)
	if len(s) > maxStringBytes {
		return nil, fmt.Errorf("result longer than %d bytes", maxStringBytes)
	}
	return s, nil
}

// substr is flagd-core's substr: [string, start, length], where a
// negative length leaves that many characters off the end. Positions count
// UTF-16 code units, as JavaScript does.
func substr(s, from, end any) (any, error) {
	str, ok := s.(string)
	if !ok {
		return nil, fmt.Errorf("substr of %s, not a string", kind(s))
	}
	u := utf16.Encode([]rune(str))
	if end != undefined && toNumber(end) < 0 {
		r := jsSubstr(u, from, undefined)
		var n float64
		if es, ok := end.(string); ok {
			// JavaScript adds a number and a string by joining them.
			n = toIntegerOrInfinity(jsNumber(float64(len(r))) + es)
		} else {
			n = float64(len(r)) + toIntegerOrInfinity(end)
		}
		return string(utf16.Decode(jsSubstr(r, 0.0, n))), nil
	}
	return string(utf16.Decode(jsSubstr(u, from, end))), nil
}

func jsSubstr(u []uint16, start, length any) []uint16 {
	size := float64(len(u))
	st := 0.0
	if start != undefined {
		st = toIntegerOrInfinity(start)
	}
	switch {
	case math.IsInf(st, -1):
		st = 0
	case st < 0:
		st = math.Max(size+st, 0)
	default:
		st = math.Min(st, size)
	}
	n := size
	if length != undefined {
		n = toIntegerOrInfinity(length)
	}
	n = math.Min(math.Max(n, 0), size-st)
	if n <= 0 {
		return nil
	}
	return u[int(st) : int(st)+int(n)]
}

func toIntegerOrInfinity(v any) float64 {
	f := toNumber(v)
	if math.IsNaN(f) {
		return 0
	}
	return math.Trunc(f)
}

func arithmetic(op string, a []any) (any, error) {
	nums := make([]float64, len(a))
	for i, x := range a {
		if isObject(x) {
			return nil, errNaN
		}
		if nums[i] = toNumber(x); math.IsNaN(nums[i]) {
			return nil, errNaN
		}
	}
	var res float64
	switch op {
	case "+":
		for _, n := range nums {
			res += n
		}
	case "*":
		res = 1
		for _, n := range nums {
			res *= n
		}
	case "-":
		if len(nums) == 0 {
			return nil, errInvalidArguments
		}
		if len(nums) == 1 {
			return 0 - nums[0], nil
		}
		res = nums[0]
		for _, n := range nums[1:] {
			res -= n
		}
	case "/":
		if len(nums) == 0 {
			return nil, errInvalidArguments
		}
		if len(nums) == 1 {
			nums = []float64{1, nums[0]}
		}
		res = nums[0]
		for _, n := range nums[1:] {
			if n == 0 {
				return nil, errors.New("division by zero")
			}
			res /= n
		}
	case "%":
		if len(nums) < 2 {
			return nil, errInvalidArguments
		}
		res = nums[0]
		for _, n := range nums[1:] {
			res = math.Mod(res, n)
		}
	}
	if math.IsNaN(res) {
		return nil, errNaN
	}
	if res == 0 {
		res = 0 // not -0, which JSON would write as "-0"
	}
	return res, nil
}

// missing lists the keys (dotted paths) that data does not have.
func missing(keys []any, data any) []any {
	out := []any{}
	for _, k := range keys {
		cur, found := data, true
		for _, p := range splitPath(jsString(k)) {
			var ok bool
			if jsFalsy(cur) {
				found = false
				break
			}
			if cur, ok = property(cur, p); !ok {
				found = false
				break
			}
		}
		if !found {
			out = append(out, k)
		}
	}
	return out
}

func (e *evaluator) iterate(op string, args any, data any, depth int) (any, error) {
	a, ok := args.([]any)
	if !ok || len(a) == 0 {
		return nil, errInvalidArguments
	}
	sel, err := e.eval(a[0], data, depth)
	if err != nil {
		return nil, err
	}
	var items []any
	if !jsFalsy(sel) {
		if items, ok = sel.([]any); !ok {
			return nil, fmt.Errorf("cannot iterate over %s", kind(sel))
		}
	}
	mapper := arg(a, 1)
	if mapper == undefined {
		mapper = nil
	}
	if op == "reduce" {
		var acc any = undefined
		if len(a) > 2 {
			if acc, err = e.eval(a[2], data, depth); err != nil {
				return nil, err
			}
		}
		for _, it := range items {
			if acc == undefined {
				acc = it
				continue
			}
			if acc, err = e.eval(mapper, map[string]any{"accumulator": acc, "current": it}, depth); err != nil {
				return nil, err
			}
		}
		if acc == undefined {
			return nil, errors.New("reduce of an empty array with no initial value")
		}
		return acc, nil
	}
	out := []any{}
	for _, it := range items {
		v, err := e.eval(mapper, it, depth)
		if err != nil {
			return nil, err
		}
		switch op {
		case "map":
			out = append(out, v)
		case "filter":
			if truthy(v) {
				out = append(out, it)
			}
		case "all":
			if !truthy(v) {
				return false, nil
			}
		case "some", "none":
			if truthy(v) {
				return op == "some", nil
			}
		}
	}
	switch op {
	case "all":
		return len(items) > 0, nil
	case "some":
		return false, nil
	case "none":
		return true, nil
	}
	return out, nil
}

// fractional is flagd's fractional operator: the bucketing string is the
// first argument when it is a string, else the flag key and the targeting
// key joined; its MurmurHash3 picks an entry by weight (an entry is
// [variant, weight] or [variant] with weight 1). A malformed call, or no
// targeting key, gives null.
func fractional(a []any, data any) any {
	if len(a) < 1 {
		return nil
	}
	scope, _ := data.(map[string]any)
	props, _ := scope["$flagd"].(map[string]any)
	if props == nil {
		return nil
	}
	var by string
	if s, ok := a[0].(string); ok {
		by, a = s, a[1:]
	} else {
		tk := scope["targetingKey"]
		if jsFalsy(tk) {
			return nil
		}
		fk, ok := props["flagKey"]
		if !ok {
			fk = undefined
		}
		by = jsString(fk) + jsString(tk)
	}
	type entry struct {
		variant any
		weight  float64
	}
	entries := make([]entry, 0, len(a))
	total := 0.0
	for _, x := range a {
		b, ok := x.([]any)
		if !ok || len(b) == 0 || len(b) > 2 {
			return nil
		}
		var en entry
		switch v := b[0].(type) {
		case string, float64, bool, nil:
			en.variant = v
		default:
			return nil
		}
		en.weight = 1
		if len(b) == 2 {
			w, ok := b[1].(float64)
			if !ok || math.IsInf(w, 0) || w != math.Trunc(w) {
				return nil
			}
			en.weight = math.Max(0, w)
		}
		total += en.weight
		entries = append(entries, en)
	}
	if total > math.MaxInt32 {
		return nil
	}
	bucket := (uint64(murmur3([]byte(by))) * uint64(total)) >> 32
	var sum uint64
	for _, en := range entries {
		sum += uint64(en.weight)
		if sum > bucket {
			return en.variant
		}
	}
	return nil
}

// contextual are the operations whose result depends on the evaluation
// context (flagd's own operators count: flagd-core does not fold them).
var contextual = map[string]bool{
	"var": true, "missing": true, "missing_some": true,
	"fractional": true, "sem_ver": true, "starts_with": true, "ends_with": true,
}

// checkConstants finds what flagd-core refuses when it compiles a rule: it
// evaluates each largest part of the rule that does not depend on the
// context, and a part that fails makes the flag a PARSE_ERROR for every
// context (even where the rule would not reach that part).
func checkConstants(rule any) error {
	c, err := constantParts(rule, 0)
	if _, isOp := rule.(map[string]any); err == nil && c && isOp {
		_, err = (&evaluator{eager: true}).eval(rule, map[string]any{}, 0)
	}
	return err
}

// constantParts reports whether v is constant, and the failure of a
// largest constant operation in it.
func constantParts(v any, depth int) (bool, error) {
	if depth > maxEvalDepth {
		return false, fmt.Errorf("rule nested deeper than %d", maxEvalDepth)
	}
	var parts []any
	op := ""
	switch x := v.(type) {
	case []any:
		parts = x
	case map[string]any:
		if len(x) != 1 {
			return true, nil
		}
		for k, args := range x {
			op = k
			parts = []any{args}
		}
	default:
		return true, nil
	}
	constant := !contextual[op]
	if a, ok := arg(parts, 0).([]any); ok && op != "" {
		switch {
		case ((op == "!" || op == "!!") && len(a) > 1) || (op == "in" && len(a) > 2):
			// Compiled, ! and !! read only their first argument, in its
			// first two (the others are evaluated only where the whole
			// operation is folded).
			if whole, _ := constantParts(a, depth+1); whole {
				return true, nil
			}
			n := 1
			if op == "in" {
				n = 2
			}
			for _, el := range a[:n] {
				c, err := constantParts(el, depth+1)
				if err != nil {
					return false, err
				}
				if _, isOp := el.(map[string]any); isOp && c {
					if _, err := (&evaluator{eager: true}).eval(el, map[string]any{}, 0); err != nil {
						return false, err
					}
				}
			}
			return false, nil
		case (op == "if" || op == "?:") && len(a) < 3:
			// Interpreted, not compiled: nothing in it is folded.
			if c, _ := constantParts(a, depth+1); !c {
				return false, nil
			}
		}
	}
	consts := make([]bool, len(parts))
	for i, p := range parts {
		c, err := constantParts(p, depth+1)
		if err != nil {
			return false, err
		}
		consts[i] = c
		constant = constant && c
	}
	if constant {
		return true, nil
	}
	// v depends on the context: its constant operations are folded.
	for i, p := range parts {
		if _, isOp := p.(map[string]any); isOp && consts[i] {
			e := &evaluator{eager: true}
			if _, err := e.eval(p, map[string]any{}, 0); err != nil {
				return false, err
			}
		}
		if a, ok := p.([]any); ok && consts[i] {
			for _, el := range a {
				if _, isOp := el.(map[string]any); isOp {
					e := &evaluator{eager: true}
					if _, err := e.eval(el, map[string]any{}, 0); err != nil {
						return false, err
					}
				}
			}
		}
	}
	return false, nil
}

// compareInterpreted is json-logic-engine's interpreted comparison: each
// pair in turn, a loose one on numbers unless both sides are strings or
// null.
func (e *evaluator) compareInterpreted(op string, strict bool, prev any, rest []any, data any, depth int) (any, error) {
	for _, r := range rest {
		cur, err := e.eval(r, data, depth)
		if err != nil {
			return nil, err
		}
		var ok bool
		switch {
		case strict || (isStringOrNull(cur) && isStringOrNull(prev)):
			ok = jsCompare(op, prev, cur)
		case isObject(prev) || math.IsNaN(toNumber(prev)):
			return nil, errNaN
		case isObject(cur) || (math.IsNaN(toNumber(cur)) && prev != nil):
			return nil, errNaN
		default:
			ok = jsCompare(op, toNumber(prev), toNumber(cur))
		}
		if !ok {
			return false, nil
		}
		prev = cur
	}
	return true, nil
}
