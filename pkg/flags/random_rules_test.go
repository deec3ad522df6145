package flags

import (
	"encoding/json"
	"math/rand"
	"regexp"
	"testing"

	"github.com/serin-dev/serin/pkg/testharness/flagd"
)

// randomRules are rules built at random (fixed seed) from the operators
// and awkward values (numeric text, null, arrays, missing variables), to
// find where Go's evaluator and flagd-core part. They keep clear of two
// faults of flagd-core's compiled code that Go does not copy: the operands
// of a comparison after the first, and var defaults, are literals (its
// comparisons check an operand against a temporary that an expression
// operand overwrites, and a default expression loses its parentheses).
func randomRules(n int) []ruleCase {
	r := rand.New(rand.NewSource(1))
	literals := []any{0, 1, -1, 1.5, 7, "5", "", "abc", "1e3", " 12 ", "0x10", "a", "1.2.3", "v2.0", "2.0.0-rc.1",
		true, false, nil, []any{}, []any{1, "a"}, []any{"x", "abc"}}
	vars := []string{"x", "y", "s", "n", "b", "z", "arr", "obj", "missing", "obj.k", "arr.0", "s.length", "targetingKey", "$flagd.flagKey"}
	ops := []string{"==", "===", "!=", "!==", "<", "<=", ">", ">=", "!", "!!", "and", "or", "if", "in", "cat", "substr",
		"+", "-", "*", "/", "%", "max", "min", "merge", "missing", "starts_with", "ends_with", "sem_ver", "fractional", "var"}
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := r.Intn(10); {
		case depth > 3 || k < 3:
			return literals[r.Intn(len(literals))]
		case k < 5:
			if r.Intn(4) == 0 {
				return map[string]any{"var": []any{vars[r.Intn(len(vars))], literals[r.Intn(len(literals))]}}
			}
			return map[string]any{"var": vars[r.Intn(len(vars))]}
		}
		op := ops[r.Intn(len(ops))]
		var args []any
		switch op {
		case "fractional":
			if r.Intn(2) == 0 {
				args = append(args, gen(depth+1))
			}
			for range 1 + r.Intn(3) {
				args = append(args, []any{gen(depth + 1), r.Intn(60) - 5})
			}
		case "sem_ver":
			args = []any{gen(depth + 1), []string{"=", "!=", "<", "<=", ">", ">=", "^", "~", "x"}[r.Intn(9)], gen(depth + 1)}
		case "==", "===", "!=", "!==", "<", "<=", ">", ">=":
			args = []any{gen(depth + 1)}
			for range r.Intn(3) {
				args = append(args, literals[r.Intn(len(literals))])
			}
		default:
			for range r.Intn(4) {
				args = append(args, gen(depth+1))
			}
		}
		arith := op == "+" || op == "-" || op == "*" || op == "/" || op == "%"
		if len(args) == 1 && r.Intn(3) == 0 && !arith {
			return map[string]any{op: args[0]}
		}
		if args == nil {
			args = []any{}
		}
		return map[string]any{op: args}
	}
	contexts := []map[string]any{
		{"x": 1, "y": "1", "s": "hello", "n": nil, "b": true, "z": 0, "arr": []any{1, "a"}, "obj": map[string]any{"k": "v"}, "targetingKey": "user-1"},
		{"x": "abc", "y": 2.5, "s": "", "n": 0, "b": false, "z": "0", "arr": []any{}, "obj": map[string]any{}, "targetingKey": "user-2"},
		{"x": "2.0.0", "y": -3, "s": "5", "b": "true", "arr": []any{"x"}},
	}
	var out []ruleCase
	for len(out) < n {
		rule := gen(0)
		if _, ok := rule.(map[string]any); !ok {
			continue
		}
		rb, _ := json.Marshal(rule)
		cb, _ := json.Marshal(contexts[r.Intn(len(contexts))])
		out = append(out, ruleCase{rule: string(rb), ctx: string(cb)})
	}
	return out
}

var timestamp = regexp.MustCompile(`"timestamp":\d+`)

func TestRandomRulesWithFlagdCore(t *testing.T) {
	dir := flagd.Install(t)
	cases := randomRules(3000)
	got := flagdCoreRules(t, dir, cases)
	bad := 0
	for i, c := range cases {
		want := timestamp.ReplaceAllString(got[i], `"timestamp":0`)
		mine := timestamp.ReplaceAllString(evalRule(t, c), `"timestamp":0`)
		ok := mine == want || (mine == "!" && want[0] == '!')
		if !ok && mine != "!" && want[0] != '!' {
			ok = canonical(decodeJSON(t, mine)) == canonical(decodeJSON(t, want))
		}
		if !ok {
			if bad < 200 {
				t.Errorf("%s over %s: Go %s, flagd-core %s", c.rule, c.ctx, mine, want)
			}
			bad++
		}
	}
	t.Logf("%d random rules, %d where Go differs from flagd-core", len(cases), bad)
}
