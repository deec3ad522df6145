package flags

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// ruleCase is a JSONLogic rule, a context and the rule's result as JSON
// ("!" when the evaluation fails). TestRulesWithFlagdCore checks the same
// table against flagd-core.
type ruleCase struct {
	rule, ctx, want string
}

// ruleFlagKey is the flag key the rule cases evaluate under.
const ruleFlagKey = "f"

var ruleCases = []ruleCase{
	// var
	{`{"var": "a"}`, `{"a": 1}`, `1`},
	{`{"var": "a.b.c"}`, `{"a": {"b": {"c": "deep"}}}`, `"deep"`},
	{`{"var": "a.b"}`, `{"a": {"b": null}}`, `null`},
	{`{"var": ["a.b", 7]}`, `{"a": {"b": null}}`, `7`},
	{`{"var": ["missing", "dflt"]}`, `{}`, `"dflt"`},
	{`{"var": ["a", "dflt"]}`, `{"a": false}`, `false`},
	{`{"var": "a.1"}`, `{"a": [5, 6]}`, `6`},
	{`{"var": "a.length"}`, `{"a": [5, 6]}`, `2`},
	{`{"var": "x.length"}`, `{"x": "abc"}`, `3`},
	{`{"var": 1}`, `{"1": "one"}`, `"one"`},
	{`{"var": ["x"]}`, `{"x": "abc"}`, `"abc"`},
	{`{"var": [{"cat": ["x"]}]}`, `{"x": "abc"}`, `"abc"`},
	{`{"var": "a\\.b"}`, `{"a.b": "escaped"}`, `"escaped"`},
	{`{"var": "targetingKey"}`, `{"targetingKey": "user-1"}`, `"user-1"`},
	{`{"var": "$flagd.flagKey"}`, `{}`, `"f"`},
	{`{"var": "$flagd.flagKey"}`, `{"$flagd": {"flagKey": "other"}}`, `"f"`},
	{`{">": [{"var": "$flagd.timestamp"}, 1700000000]}`, `{}`, `true`},
	// if
	{`{"if": [true, "a", "b"]}`, `{}`, `"a"`},
	{`{"if": [false, "a", "b"]}`, `{}`, `"b"`},
	{`{"if": [false, "a", true, "b", "c"]}`, `{}`, `"b"`},
	{`{"if": [false, "a", false, "b", "c"]}`, `{}`, `"c"`},
	{`{"if": [false, 1]}`, `{}`, `null`},
	{`{"if": [true]}`, `{}`, `true`},
	{`{"if": []}`, `{}`, `null`},
	{`{"if": [[], "a", "b"]}`, `{}`, `"b"`},
	{`{"if": [{"var": "o"}, "a", "b"]}`, `{"o": {}}`, `"b"`},
	{`{"if": ["0", "a", "b"]}`, `{}`, `"a"`},
	// == and !=
	{`{"==": [1, 1]}`, `{}`, `true`},
	{`{"==": ["5", 5]}`, `{}`, `true`},
	{`{"==": [true, "1"]}`, `{}`, `true`},
	{`{"==": [null, 0]}`, `{}`, `true`},
	{`{"==": [{"var": "x"}, false]}`, `{}`, `true`},
	{`{"==": [{"var": "x"}, {"var": "y"}]}`, `{"x": null, "y": ""}`, `false`},
	{`{"==": [{"var": "x"}, {"var": "y"}]}`, `{"x": "", "y": 0}`, `true`},
	{`{"==": [{"var": "x"}, "abc"]}`, `{"x": 5}`, `!`},
	{`{"==": [{"var": "x"}, 1]}`, `{"x": [1]}`, `!`},
	{`{"==": ["a", "a", "a"]}`, `{}`, `true`},
	{`{"!=": [null, 0]}`, `{}`, `false`},
	{`{"!=": ["a", "b"]}`, `{}`, `true`},
	// === and !==
	{`{"===": [1, 1]}`, `{}`, `true`},
	{`{"===": ["1", 1]}`, `{}`, `false`},
	{`{"===": [null, null]}`, `{}`, `true`},
	{`{"===": [{"var": "x"}, {"var": "y"}]}`, `{"x": [1], "y": [1]}`, `false`},
	{`{"!==": ["1", 1]}`, `{}`, `true`},
	{`{"!==": [true, true]}`, `{}`, `false`},
	// ! and !!
	{`{"!": [true]}`, `{}`, `false`},
	{`{"!": [[]]}`, `{}`, `true`},
	{`{"!": []}`, `{}`, `true`},
	{`{"!": {"var": "x"}}`, `{"x": 0}`, `true`},
	{`{"!!": ["0"]}`, `{}`, `true`},
	{`{"!!": [{"var": "x"}]}`, `{"x": {}}`, `false`},
	{`{"!!": {"var": "x"}}`, `{"x": "0"}`, `true`},
	// and, or
	{`{"and": [true, "x"]}`, `{}`, `"x"`},
	{`{"and": [1, 0, 2]}`, `{}`, `0`},
	{`{"and": [{"var": "x"}, "y"]}`, `{"x": []}`, `[]`},
	{`{"and": []}`, `{}`, `null`},
	{`{"or": [0, "", null]}`, `{}`, `null`},
	{`{"or": [0, {"var": "o"}, "x"]}`, `{"o": {}}`, `"x"`},
	{`{"or": [false, "y"]}`, `{}`, `"y"`},
	// < <= > >=
	{`{"<": [1, 2]}`, `{}`, `true`},
	{`{"<": [1, 2, 3]}`, `{}`, `true`},
	{`{"<": [1, 3, 2]}`, `{}`, `false`},
	{`{"<=": [2, 2]}`, `{}`, `true`},
	{`{">": ["10", 9]}`, `{}`, `true`},
	{`{"<": ["10", "9"]}`, `{}`, `true`},
	{`{"<": ["a", "b"]}`, `{}`, `true`},
	{`{"<": [null, 5]}`, `{}`, `true`},
	{`{"<=": [{"var": "x"}, {"var": "y"}]}`, `{"x": null, "y": 0}`, `true`},
	{`{">=": [{"var": "age"}, 18]}`, `{"age": 21}`, `true`},
	{`{"<": [{"var": "x"}, 5]}`, `{"x": "abc"}`, `!`},
	{`{"<": [{"var": "x"}, 5]}`, `{"x": [1]}`, `!`},
	// in
	{`{"in": ["b", ["a", "b"]]}`, `{}`, `true`},
	{`{"in": ["c", ["a", "b"]]}`, `{}`, `false`},
	{`{"in": [{"var": "x"}, {"var": "s"}]}`, `{"x": "1", "s": [1, "1"]}`, `true`},
	{`{"in": [1, ["1"]]}`, `{}`, `false`},
	{`{"in": ["ell", "hello"]}`, `{}`, `true`},
	{`{"in": [{"var": "x"}, {"var": "s"}]}`, `{"x": 1, "s": "a1b"}`, `true`},
	{`{"in": [null, "xnullx"]}`, `{}`, `true`},
	{`{"in": ["a", ""]}`, `{}`, `false`},
	{`{"in": ["a", {"var": "missing"}]}`, `{}`, `false`},
	{`{"in": [{"var": "x"}, {"var": "s"}]}`, `{"x": 1, "s": 5}`, `!`},
	{`{"in": [{"var": "x"}, {"var": "s"}]}`, `{"x": 1, "s": {"a": 1}}`, `!`},
	// cat
	{`{"cat": ["a", "b", "c"]}`, `{}`, `"abc"`},
	{`{"cat": ["a", null, {"var": "x"}]}`, `{}`, `"anullnull"`},
	{`{"cat": ["a", 1.5, true, [1, 2]]}`, `{}`, `"a1.5true1,2"`},
	{`{"cat": [{"var": "x"}, {"var": "y"}, {"var": "z"}]}`, `{"x": 1e21, "y": 1.0, "z": 0.000001}`, `"1e+2110.000001"`},
	{`{"cat": [{"var": "x"}, "|", {"var": "y"}]}`, `{"x": 1e-7, "y": 123456.789}`, `"1e-7|123456.789"`},
	{`{"cat": [{"var": "x"}]}`, `{"x": {"a": 1}}`, `"[object Object]"`},
	{`{"cat": {"var": "x"}}`, `{"x": 5}`, `"5"`},
	{`{"cat": "s"}`, `{}`, `"s"`},
	// substr
	{`{"substr": ["hello", 1]}`, `{}`, `"ello"`},
	{`{"substr": ["hello", 1, 2]}`, `{}`, `"el"`},
	{`{"substr": ["hello", -3]}`, `{}`, `"llo"`},
	{`{"substr": ["hello", 1, -1]}`, `{}`, `"ell"`},
	{`{"substr": [{"var": "x"}, -10, 2]}`, `{"x": "hello"}`, `"he"`},
	{`{"substr": [{"var": "x"}, {"var": "i"}]}`, `{"x": "hello", "i": "2"}`, `"llo"`},
	{`{"substr": [{"var": "x"}, 1.7]}`, `{"x": "hello"}`, `"ello"`},
	{`{"substr": [{"var": "x"}]}`, `{"x": "hello"}`, `"hello"`},
	{`{"substr": [{"var": "x"}, 1]}`, `{"x": 5}`, `!`},
	// arithmetic
	{`{"+": [1, "2", 3]}`, `{}`, `6`},
	{`{"+": "3"}`, `{}`, `3`},
	{`{"-": [7, 2]}`, `{}`, `5`},
	{`{"-": [7]}`, `{}`, `-7`},
	{`{"*": [2, "3"]}`, `{}`, `6`},
	{`{"/": [7, 2]}`, `{}`, `3.5`},
	{`{"%": [7, 3]}`, `{}`, `1`},
	{`{"/": [{"var": "x"}, 0]}`, `{"x": 1}`, `!`},
	{`{"+": [{"var": "x"}, 1]}`, `{"x": "abc"}`, `!`},
	{`{"max": [1, 3, 2]}`, `{}`, `3`},
	{`{"min": [1, 3, 2]}`, `{}`, `1`},
	// arrays, missing
	{`{"merge": [[1], 2, [3, [4]]]}`, `{}`, `[1,2,3,[4]]`},
	{`{"map": [[1, 2, 3], {"*": [{"var": ""}, 2]}]}`, `{}`, `[2,4,6]`},
	{`{"filter": [{"var": "xs"}, {">": [{"var": ""}, 1]}]}`, `{"xs": [1, 2, 3]}`, `[2,3]`},
	{`{"all": [[1, 2], {">": [{"var": ""}, 0]}]}`, `{}`, `true`},
	{`{"all": [[], {">": [{"var": ""}, 0]}]}`, `{}`, `false`},
	{`{"some": [[1, 2], {">": [{"var": ""}, 1]}]}`, `{}`, `true`},
	{`{"none": [[1, 2], {">": [{"var": ""}, 1]}]}`, `{}`, `false`},
	{`{"reduce": [[1, 2, 3], {"+": [{"var": "accumulator"}, {"var": "current"}]}, 0]}`, `{}`, `6`},
	{`{"missing": ["a", "b"]}`, `{"a": 1}`, `["b"]`},
	{`{"missing_some": [1, ["a", "b"]]}`, `{"a": 1}`, `[]`},
	// starts_with, ends_with
	{`{"starts_with": [{"var": "email"}, "admin"]}`, `{"email": "admin@x.io"}`, `true`},
	{`{"starts_with": [{"var": "email"}, "root"]}`, `{"email": "admin@x.io"}`, `false`},
	{`{"ends_with": [{"var": "email"}, "@x.io"]}`, `{"email": "admin@x.io"}`, `true`},
	{`{"starts_with": [{"var": "x"}, "a"]}`, `{"x": 5}`, `null`},
	{`{"ends_with": [{"var": "x"}, "a", "b"]}`, `{"x": "a"}`, `null`},
	// sem_ver
	{`{"sem_ver": ["1.2.3", "=", "1.2.3"]}`, `{}`, `true`},
	{`{"sem_ver": ["1.2.3", "!=", "1.2.4"]}`, `{}`, `true`},
	{`{"sem_ver": ["1.2.3", "<", "1.10.0"]}`, `{}`, `true`},
	{`{"sem_ver": ["2.0.0", ">=", "2.0.0"]}`, `{}`, `true`},
	{`{"sem_ver": ["2.0.1", ">", "2.0.0"]}`, `{}`, `true`},
	{`{"sem_ver": ["v1.2", "^", "1.9.0"]}`, `{}`, `true`},
	{`{"sem_ver": [{"var": "v"}, "~", "1.2.0"]}`, `{"v": "1.2.9"}`, `true`},
	{`{"sem_ver": [{"var": "v"}, "~", "1.2.0"]}`, `{"v": "1.3.0"}`, `false`},
	{`{"sem_ver": ["1.2.3-rc.1", "<", "1.2.3"]}`, `{}`, `true`},
	{`{"sem_ver": [{"var": "v"}, "<", "1.0.0-alpha.beta"]}`, `{"v": "1.0.0-alpha.1"}`, `true`},
	{`{"sem_ver": ["1.0.0-alpha.2", "<", "1.0.0-alpha.10"]}`, `{}`, `true`},
	{`{"sem_ver": [{"var": "v"}, "=", "1.0.0"]}`, `{"v": "1.0.0+build"}`, `true`},
	{`{"sem_ver": [1, "=", "1.0.0"]}`, `{}`, `true`},
	{`{"sem_ver": [{"var": "v"}, ">", "1.2.0"]}`, `{"v": "1.2.9.1"}`, `null`},
	{`{"sem_ver": [{"var": "v"}, "<", "1.0.0"]}`, `{"v": "01.0.0"}`, `null`},
	{`{"sem_ver": [{"var": "v"}, "x", "1.0.0"]}`, `{"v": "1.0.0"}`, `null`},
	{`{"sem_ver": ["1.0.0", "="]}`, `{}`, `null`},
	// fractional
	{`{"fractional": [["a", 50], ["b", 50]]}`, `{"targetingKey": "u1"}`, `"a"`},
	{`{"fractional": [["a", 50], ["b", 50]]}`, `{"targetingKey": "user-7"}`, `"b"`},
	{`{"fractional": [["a"], ["b"]]}`, `{"targetingKey": "u1"}`, `"a"`},
	{`{"fractional": [{"var": "email"}, ["a", 50], ["b", 50]]}`, `{"targetingKey": "u1", "email": "x@y"}`, `"a"`},
	{`{"fractional": [{"var": "email"}, ["a", 50], ["b", 50]]}`, `{"targetingKey": "u1"}`, `null`},
	{`{"fractional": [["a", 50], ["b", 50]]}`, `{"targetingKey": ""}`, `null`},
	{`{"fractional": [["a", 50], ["b", 50]]}`, `{}`, `null`},
	{`{"fractional": [["a", 50], ["b", 50]]}`, `{"targetingKey": 5}`, `"b"`},
	{`{"fractional": [[true, 50], [1, 50]]}`, `{"targetingKey": "u1"}`, `true`},
	{`{"fractional": [[{"var": "c"}, 50], ["z", 50]]}`, `{"targetingKey": "u1", "c": "dyn"}`, `"dyn"`},
	{`{"fractional": [["a", -5], ["b", 10]]}`, `{"targetingKey": "u1"}`, `"b"`},
	{`{"fractional": [["a", 0], ["b", 0]]}`, `{"targetingKey": "u1"}`, `null`},
	{`{"fractional": [["a", 1.5], ["b"]]}`, `{"targetingKey": "u1"}`, `null`},
	{`{"fractional": [["a", 50, 1]]}`, `{"targetingKey": "u1"}`, `null`},
	{`{"fractional": [[["a"], 50]]}`, `{"targetingKey": "u1"}`, `null`},
	{`{"fractional": []}`, `{"targetingKey": "u1"}`, `null`},
	{`{"fractional": ["abc"]}`, `{"targetingKey": "u1"}`, `null`},
	{`{"fractional": [["a", 1], ["b", 2147483647]]}`, `{"targetingKey": "u1"}`, `null`},
}

// evalRule evaluates a rule case in Go; the result as JSON, or "!".
func evalRule(t *testing.T, c ruleCase) string {
	t.Helper()
	rule := decodeJSON(t, c.rule)
	ctx, _ := decodeJSON(t, c.ctx).(map[string]any)
	data, err := contextData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data["$flagd"] = map[string]any{"flagKey": ruleFlagKey, "timestamp": float64(time.Now().Unix())}
	if err := checkConstants(rule); err != nil {
		return "!"
	}
	v, err := (&evaluator{}).eval(rule, data, 0)
	if err != nil {
		return "!"
	}
	return compactJSON(t, v)
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

func compactJSON(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(canonicalValue(v)); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(b.String())
}

func TestRules(t *testing.T) {
	for _, c := range ruleCases {
		if got := evalRule(t, c); got != c.want {
			t.Errorf("%s over %s: got %s, want %s", c.rule, c.ctx, got, c.want)
		}
	}
}

func TestJSNumber(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0", 1: "1", -1: "-1", 1.5: "1.5", 100: "100", 1e21: "1e+21", 1e20: "100000000000000000000",
		0.000001: "0.000001", 1e-7: "1e-7", 123456.789: "123456.789", -2.5e-10: "-2.5e-10", 1.25e22: "1.25e+22",
	} {
		if got := jsNumber(f); got != want {
			t.Errorf("jsNumber(%v) = %s, want %s", f, got, want)
		}
	}
}

const evalDoc = `{
  "$evaluators": {"pro": {"==": [{"var": "plan"}, "pro"]}},
  "flags": {
    "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "off": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "no-default": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": null},
    "targeted": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a",
      "targeting": {"if": [{"$ref": "pro"}, "b", null]}},
    "targeted-no-default": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": null,
      "targeting": {"if": [{"$ref": "pro"}, "b", null]}},
    "bool-names": {"state": "ENABLED", "variants": {"true": "yes", "false": "no"}, "defaultVariant": "false",
      "targeting": {"in": [{"var": "country"}, ["US", "CA"]]}},
    "bad-variant": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a",
      "targeting": {"if": [true, "nope", "a"]}},
    "failing": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a",
      "targeting": {"<": [{"var": "plan"}, 5]}},
    "split": {"state": "ENABLED", "variants": {"x": {"n": 1}, "y": {"n": 2}}, "defaultVariant": "x",
      "targeting": {"fractional": [["x", 50], ["y", 50]]}}
  }
}`

func TestEvaluate(t *testing.T) {
	d, err := Parse([]byte(evalDoc))
	if err != nil {
		t.Fatal(err)
	}
	pro := map[string]any{"plan": "pro", "country": "US"}
	free := map[string]any{"plan": "free", "country": "DE"}
	for _, c := range []struct {
		flag    string
		ctx     map[string]any
		variant string
		value   any
		reason  string
		code    string
	}{
		{"static", pro, "on", true, ReasonStatic, ""},
		{"off", pro, "", nil, ReasonDisabled, ""},
		{"no-default", pro, "", nil, ReasonDefault, ""},
		{"targeted", pro, "b", "B", ReasonTargetingMatch, ""},
		{"targeted", free, "a", "A", ReasonDefault, ""},
		{"targeted-no-default", pro, "b", 2.0, ReasonTargetingMatch, ""},
		{"targeted-no-default", free, "", nil, ReasonDefault, ""},
		{"bool-names", pro, "true", "yes", ReasonTargetingMatch, ""},
		{"bool-names", free, "false", "no", ReasonTargetingMatch, ""},
		{"bad-variant", pro, "", nil, ReasonError, ErrorGeneral},
		{"failing", pro, "", nil, ReasonError, ErrorGeneral},
		{"absent", pro, "", nil, ReasonError, ErrorFlagNotFound},
		{"split", map[string]any{"targetingKey": "u1"}, "x", map[string]any{"n": 1.0}, ReasonTargetingMatch, ""},
		{"split", map[string]any{}, "x", map[string]any{"n": 1.0}, ReasonDefault, ""},
	} {
		r, err := d.Evaluate(c.flag, c.ctx)
		var ee *EvalError
		code := ""
		if errors.As(err, &ee) {
			code = ee.Code
		} else if err != nil {
			t.Errorf("%s: error %v is not an *EvalError", c.flag, err)
		}
		if r.Variant != c.variant || canonical(r.Value) != canonical(c.value) || r.Reason != c.reason || code != c.code {
			t.Errorf("%s over %v: got %q %v %s %q (%v), want %q %v %s %q",
				c.flag, c.ctx, r.Variant, show(r.Value), r.Reason, code, err, c.variant, show(c.value), c.reason, c.code)
		}
		if r.CodeDefault() != (c.variant == "") {
			t.Errorf("%s: CodeDefault %v", c.flag, r.CodeDefault())
		}
	}
	// The default bucketing string is flag key + targeting key.
	for i := range 200 {
		tk := fmt.Sprint("key-", i)
		r, err := d.Evaluate("split", map[string]any{"targetingKey": tk})
		if err != nil {
			t.Fatal(err)
		}
		want := "x"
		if murmur3([]byte("split"+tk))>>31 == 1 {
			want = "y"
		}
		if r.Variant != want {
			t.Errorf("split, key %s: got %s, want %s", tk, r.Variant, want)
		}
	}
	if _, err := Evaluate([]byte(evalDoc), "static", nil); err != nil {
		t.Errorf("Evaluate with a nil context: %v", err)
	}
	if r, err := Evaluate([]byte(`{"flags": {"f": {"state": "ENABLED", "variants": {"1": 1, "2": 2}, "defaultVariant": "1",
		"targeting": {"+": [{"var": "n"}, 1]}}}}`), "f", map[string]any{"n": 1}); err != nil || r.Variant != "2" {
		t.Errorf("Go int in the context: %+v, %v", r, err)
	}
}

// TestEvaluateBounds: a rule that nests too deeply, runs too long or
// builds too long a string fails instead of running on.
func TestEvaluateBounds(t *testing.T) {
	deep := `"x"`
	for range 600 {
		deep = `{"!": [` + deep + `]}`
	}
	var many []string
	for i := range 1000 {
		many = append(many, fmt.Sprint(i))
	}
	list := "[" + strings.Join(many, ",") + "]"
	long := `{"map": [` + list + `, {"map": [` + list + `, {"var": ""}]}]}`
	doubling := `{"reduce": [[` + strings.Repeat(`0,`, 40) + `0], {"cat": [{"var": "accumulator"}, {"var": "accumulator"}]}, "x"]}`
	for name, rule := range map[string]string{"deep": deep, "long": long, "doubling": doubling} {
		doc := `{"flags": {"f": {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "a", "targeting": ` + rule + `}}}`
		start := time.Now()
		r, err := Evaluate([]byte(doc), "f", map[string]any{})
		var ee *EvalError
		if !errors.As(err, &ee) || r.Reason != ReasonError {
			t.Errorf("%s: got %+v, %v; want ERROR", name, r, err)
		} else {
			t.Logf("%s: %v (%v)", name, err, time.Since(start).Round(time.Millisecond))
		}
	}
}

// BenchmarkEvaluate evaluates a flag of the document Rollout writes at 25%
// (the split around a targeting rule with a shared evaluator).
func BenchmarkEvaluate(b *testing.B) {
	c := conformanceCases[1]
	old, err := Parse([]byte(c.old))
	if err != nil {
		b.Fatal(err)
	}
	new, err := Parse([]byte(c.new))
	if err != nil {
		b.Fatal(err)
	}
	text, err := Rollout(old, new, 25)
	if err != nil {
		b.Fatal(err)
	}
	d, err := Parse(text)
	if err != nil {
		b.Fatal(err)
	}
	_, contexts := conformanceContexts()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.Evaluate("free-shipping", contexts[i%len(contexts)]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEvaluateConcurrent evaluates one document from several goroutines
// (run with -race).
func TestEvaluateConcurrent(t *testing.T) {
	d, err := Parse([]byte(evalDoc))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			for i := range 200 {
				ctx := map[string]any{"targetingKey": fmt.Sprint(g, "-", i), "plan": "pro"}
				for _, k := range d.Flags() {
					if _, err := d.Evaluate(k, ctx); err != nil && k != "bad-variant" && k != "failing" {
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
