package flags

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMurmur3(t *testing.T) {
	// Vectors computed with imurmurhash, the hash flagd-core uses.
	for _, tc := range []struct {
		in   string
		want uint32
	}{
		{"", 0},
		{"a", 0x3c2569b2},
		{"ab", 0x9bbfd75f},
		{"abc", 0xb3dd93fa},
		{"abcd", 0x43ed676a},
		{"hello", 0x248bfa47},
		{"The quick brown fox jumps over the lazy dog", 0x2e4ff723},
		{"serin/new-checkout/user-1", 0x66026e11},
	} {
		if got := murmur3([]byte(tc.in)); got != tc.want {
			t.Errorf("murmur3(%q) = %#08x, want %#08x", tc.in, got, tc.want)
		}
	}
}

func TestBucket(t *testing.T) {
	if got, want := Bucket("new-checkout", "user-1"), float64(0x66026e11)*100/(1<<32); got != want {
		t.Errorf("Bucket = %v, want %v", got, want)
	}
	weights := []int{0, 1, 5, 25, 50, 99, 100}
	counts := make([]int, len(weights))
	const n = 20000
	for i := range n {
		key := fmt.Sprintf("user-%d", i)
		b := Bucket("f", key)
		if b < 0 || b >= 100 {
			t.Fatalf("Bucket(f, %s) = %v, not in [0, 100)", key, b)
		}
		was := false
		for j, w := range weights {
			on := OnNewSide("f", key, w)
			if on != (w == 100 || b < float64(w)) {
				t.Errorf("OnNewSide(f, %s, %d) = %v with Bucket %v", key, w, on, b)
			}
			if was && !on {
				t.Errorf("key %s leaves the new side at %d%%", key, w)
			}
			was = on
			if on {
				counts[j]++
			}
		}
	}
	for j, w := range weights {
		if share := 100 * float64(counts[j]) / n; share < float64(w)-1 || share > float64(w)+1 {
			t.Errorf("at %d%%, %.2f%% of keys on the new side", w, share)
		}
	}
	if OnNewSide("f", "", 50) || !OnNewSide("f", "", 100) {
		t.Error("a context without a targeting key must stay old until 100")
	}
	// Different flags split independently.
	same := 0
	for i := range 1000 {
		key := fmt.Sprintf("user-%d", i)
		if OnNewSide("a", key, 50) == OnNewSide("b", key, 50) {
			same++
		}
	}
	if same < 430 || same > 570 {
		t.Errorf("flags a and b agree on %d of 1000 keys at 50%%; want about half", same)
	}
}

const validDoc = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "metadata": {"team": "web", "version": 3},
  "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@faas.com"]}},
  "x-extra": [1, 2.50, "three"],
  "flags": {
    "color": {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red",
      "targeting": {"if": [{"$ref": "staff"}, "blue", null]}, "metadata": {"owner": "ux"}, "x-note": "kept"},
    "price": {"state": "DISABLED", "variants": {"low": 1.50, "high": 1e3}, "defaultVariant": "low"},
    "codeDefault": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": null, "targeting": {}}
  }
}`

func mustParse(t *testing.T, s string) *Document {
	t.Helper()
	d, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, s)
	}
	return d
}

func TestParseRoundTrip(t *testing.T) {
	d := mustParse(t, validDoc)
	if got, want := d.Flags(), []string{"codeDefault", "color", "price"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Flags() = %v, want %v", got, want)
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(validDoc), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the document:\n%s", b)
	}
	for _, text := range []string{`2.50`, `1.50`, `1e3`, `"$ref": "staff"`} {
		if !strings.Contains(string(b), text) {
			t.Errorf("round trip lost %s:\n%s", text, b)
		}
	}
}

func TestParseErrors(t *testing.T) {
	flag := func(body string) string { return `{"flags": {"my-flag": ` + body + `}}` }
	for _, tc := range []struct {
		name, doc string
		want      []string // all in the error
	}{
		{"not JSON", `{"flags": `, []string{"not JSON"}},
		{"trailing data", `{"flags": {}} {}`, []string{"after its JSON value"}},
		{"not an object", `[]`, []string{"must be a JSON object", "array"}},
		{"no flags", `{"$schema": "x"}`, []string{`no "flags"`}},
		{"flags not an object", `{"flags": []}`, []string{`"flags" must be an object`}},
		{"evaluators not an object", `{"flags": {}, "$evaluators": 1}`, []string{`"$evaluators" must be an object`}},
		{"flag not an object", flag(`"on"`), []string{`flag "my-flag"`, "must be an object"}},
		{"no state", flag(`{"variants": {"on": true}, "defaultVariant": "on"}`), []string{`flag "my-flag"`, "no state"}},
		{"bad state", flag(`{"state": "ON", "variants": {"on": true}, "defaultVariant": "on"}`), []string{`flag "my-flag"`, `state must be`, `"ON"`}},
		{"no variants", flag(`{"state": "ENABLED", "defaultVariant": "on"}`), []string{`flag "my-flag"`, "no variants"}},
		{"empty variants", flag(`{"state": "ENABLED", "variants": {}}`), []string{`flag "my-flag"`, "variants is empty"}},
		{"variants not an object", flag(`{"state": "ENABLED", "variants": ["on"]}`), []string{"variants must be an object"}},
		{"mixed variant types", flag(`{"state": "ENABLED", "variants": {"a": true, "b": "x"}}`), []string{"variants mix types", `"a" is boolean`, `"b" is string`}},
		{"array variant", flag(`{"state": "ENABLED", "variants": {"a": [1]}}`), []string{`variant "a" is array`}},
		{"null variant", flag(`{"state": "ENABLED", "variants": {"a": null}}`), []string{`variant "a" is null`}},
		{"empty variant name", flag(`{"state": "ENABLED", "variants": {"": true}}`), []string{"empty name"}},
		{"default not a variant", flag(`{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "maybe"}`),
			[]string{`flag "my-flag"`, `defaultVariant "maybe" is not one of the variants [off on]`}},
		{"default not a string", flag(`{"state": "ENABLED", "variants": {"on": true}, "defaultVariant": 1}`), []string{"defaultVariant must be a variant name"}},
		{"targeting not an object", flag(`{"state": "ENABLED", "variants": {"on": true}, "targeting": "{\"var\": \"x\"}"}`),
			[]string{`flag "my-flag"`, "targeting must be a JSON object", "string"}},
		{"unknown operator", flag(`{"state": "ENABLED", "variants": {"on": true}, "targeting": {"if": [{"regex": [{"var": "x"}, "a"]}, "on", null]}}`),
			[]string{`flag "my-flag"`, `unknown operator "regex"`, "targeting.if[0]"}},
		{"not an operation", flag(`{"state": "ENABLED", "variants": {"on": true}, "targeting": {"var": "x", "if": []}}`),
			[]string{"not a JSONLogic operation"}},
		{"unknown $ref", flag(`{"state": "ENABLED", "variants": {"on": true}, "targeting": {"if": [{"$ref": "nope"}, "on", null]}}`),
			[]string{`flag "my-flag"`, `$ref "nope": no such entry in $evaluators`}},
		{"$ref cycle", `{"$evaluators": {"a": {"!": [{"$ref": "b"}]}, "b": {"!": [{"$ref": "a"}]}},
			"flags": {"my-flag": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "a"}}}}`,
			[]string{`flag "my-flag"`, "refers to itself", "a -> b -> a"}},
		{"several flags", `{"flags": {"b": {"state": "ON", "variants": {"on": true}}, "a": {"state": "ENABLED"}}}`,
			[]string{`flag "a": has no variants`, `flag "b": state must be`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatal("Parse accepted the document")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, doc := range []string{
		`{"flags": {}}`,
		`{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}}}}`,
		`{"flags": {"f": {"state": "DISABLED", "variants": {"a": {"x": 1}, "b": {}}, "defaultVariant": "b", "targeting": null}}}`,
		`{"flags": {"f": {"state": "ENABLED", "variants": {"1": 1, "2": 2}, "defaultVariant": "1",
		  "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, ["1", 50], ["2", 50]]}}}}`,
		`{"flags": {"f": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
		  "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "1.0.0"]}, "on", {"if": [{"starts_with": [{"var": "email"}, "a"]}, "on", null]}]}}}}`,
	} {
		mustParse(t, doc)
	}
}

// pair builds old and new documents that differ in the flags given.
func pair(t *testing.T, oldFlags, newFlags string) (*Document, *Document) {
	t.Helper()
	return mustParse(t, `{"flags": {`+oldFlags+`}}`), mustParse(t, `{"flags": {`+newFlags+`}}`)
}

const (
	flagOn  = `"f": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}`
	flagOff = `"f": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}`
	other   = `"g": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a"}`
)

func TestChanged(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new string
		want     []string
	}{
		{"nothing", `{"flags": {` + flagOn + `,` + other + `}}`, `{"flags": {` + other + `,` + flagOn + `}}`, nil},
		{"formatting and key order", `{"flags": {"f": {"state": "ENABLED", "defaultVariant": "on", "variants": {"off": false, "on": true}}}}`,
			`{"flags":{` + flagOn + `}}`, nil},
		{"number spelling", `{"flags": {"n": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}}}`,
			`{"flags": {"n": {"state": "ENABLED", "variants": {"a": 1.0}, "defaultVariant": "a"}}}`, nil},
		{"metadata only", `{"metadata": {"v": 1}, "flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "metadata": {"v": 1}}}}`,
			`{"metadata": {"v": 2}, "flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "metadata": {"v": 2}}}}`, nil},
		{"variant flip", `{"flags": {` + flagOn + `,` + other + `}}`, `{"flags": {` + flagOff + `,` + other + `}}`, []string{"f"}},
		{"state", `{"flags": {` + flagOn + `}}`, `{"flags": {` + strings.Replace(flagOn, "ENABLED", "DISABLED", 1) + `}}`, []string{"f"}},
		{"variant value", `{"flags": {` + other + `}}`, `{"flags": {` + strings.Replace(other, `"B"`, `"b"`, 1) + `}}`, []string{"g"}},
		{"added and removed", `{"flags": {` + flagOn + `}}`, `{"flags": {` + other + `}}`, []string{"f", "g"}},
		{"targeting", `{"flags": {"t": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"in": [{"var": "c"}, ["US"]]}}}}`,
			`{"flags": {"t": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"in": [{"var": "c"}, ["US", "CA"]]}}}}`, []string{"t"}},
		{"empty targeting is no targeting", `{"flags": {"t": {"state": "ENABLED", "variants": {"on": true}, "targeting": {}}}}`,
			`{"flags": {"t": {"state": "ENABLED", "variants": {"on": true}}}}`, nil},
		{"evaluator", `{"$evaluators": {"e": {"var": "a"}}, "flags": {"t": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "e"}}, ` + other + `}}`,
			`{"$evaluators": {"e": {"var": "b"}}, "flags": {"t": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "e"}}, ` + other + `}}`, []string{"t"}},
		{"evaluator inlined", `{"$evaluators": {"e": {"var": "a"}}, "flags": {"t": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "e"}}}}`,
			`{"flags": {"t": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"var": "a"}}}}`, nil},
		{"several, sorted", `{"flags": {"z": {"state": "ENABLED", "variants": {"on": true}}, "a": {"state": "ENABLED", "variants": {"on": true}}, ` + other + `}}`,
			`{"flags": {"z": {"state": "DISABLED", "variants": {"on": true}}, "a": {"state": "DISABLED", "variants": {"on": true}}, ` + other + `}}`, []string{"a", "z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, new := mustParse(t, tc.old), mustParse(t, tc.new)
			if got := Changed(old, new); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Changed = %v, want %v", got, tc.want)
			}
			same := Revision(old) == Revision(new)
			if same != (len(tc.want) == 0) {
				t.Errorf("Revision old %s, new %s, with changed flags %v", Revision(old), Revision(new), tc.want)
			}
		})
	}
}

func TestRevision(t *testing.T) {
	d := mustParse(t, validDoc)
	r := Revision(d)
	if len(r) != 16 || strings.Trim(r, "0123456789abcdef") != "" {
		t.Errorf("Revision = %q, want 16 hex digits", r)
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if again := Revision(mustParse(t, string(b))); again != r {
		t.Errorf("Revision changed across a round trip: %s, then %s", r, again)
	}
	// A known value, so that a change of the hash is a deliberate one: the
	// controller compares revisions it stored with new ones.
	if got, want := Revision(mustParse(t, `{"flags":{`+flagOn+`}}`)), "6630615a00abc1aa"; got != want {
		t.Errorf("Revision = %s, want %s", got, want)
	}
}

// flagOf decodes the flag key of a Rollout result.
func flagOf(t *testing.T, doc []byte, key string) map[string]any {
	t.Helper()
	var d struct {
		Flags map[string]map[string]any `json:"flags"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return d.Flags[key]
}

func TestRolloutWeights(t *testing.T) {
	old, new := pair(t, flagOn+`,`+other, flagOff+`,`+other)
	for _, w := range []int{-1, 101} {
		if _, err := Rollout(old, new, w); err == nil {
			t.Errorf("Rollout accepted weight %d", w)
		}
	}
	b0, err := Rollout(old, new, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := flagOf(t, b0, "f")["defaultVariant"]; got != "on" {
		t.Errorf("at 0 the flag is not old's: defaultVariant %v", got)
	}
	b100, err := Rollout(old, new, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := new.Marshal(); string(b100) != string(want) {
		t.Errorf("at 100 the document is not new's:\n%s\nwant\n%s", b100, want)
	}
	for _, w := range []int{1, 37, 99} {
		b, err := Rollout(old, new, w)
		if err != nil {
			t.Fatal(err)
		}
		d := mustParse(t, string(b))
		if got := Changed(new, d); !reflect.DeepEqual(got, []string{"f"}) {
			t.Errorf("at %d the document changes %v of new, want [f]", w, got)
		}
		frac := flagOf(t, b, "f")["targeting"].(map[string]any)["if"].([]any)[0].(map[string]any)["and"].([]any)[1].(map[string]any)["==="].([]any)[0].(map[string]any)["fractional"].([]any)
		if got := fmt.Sprint(frac[1:]); got != fmt.Sprintf("[[new %d] [old %d]]", w, 100-w) {
			t.Errorf("at %d the split is %s", w, got)
		}
	}
}

func TestRolloutKeepsDocument(t *testing.T) {
	old := mustParse(t, validDoc)
	new := mustParse(t, strings.Replace(validDoc, `"defaultVariant": "red"`, `"defaultVariant": "blue"`, 1))
	b, err := Rollout(old, new, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{`"$schema"`, `"team": "web"`, `"x-extra"`, `2.50`, `"staff"`, `"x-note": "kept"`, `"owner": "ux"`} {
		if !strings.Contains(string(b), text) {
			t.Errorf("rolled-out document lost %s", text)
		}
	}
	if got, want := flagOf(t, b, "price"), flagOf(t, []byte(validDoc), "price"); !reflect.DeepEqual(got, want) {
		t.Errorf("unchanged flag price = %v, want %v", got, want)
	}
	// The changed flag's sides are written out: new's $evaluators may
	// differ from old's.
	if strings.Contains(fmt.Sprint(flagOf(t, b, "color")["targeting"]), "$ref") {
		t.Error("a changed flag's targeting still uses $ref")
	}
}

func TestRolloutOldEvaluatorAtZero(t *testing.T) {
	old := mustParse(t, `{"$evaluators": {"e": {"var": "a"}}, "flags": {"t": {"state": "ENABLED", "variants": {"true": 1, "false": 0}, "targeting": {"$ref": "e"}}}}`)
	new := mustParse(t, `{"$evaluators": {"e": {"var": "b"}}, "flags": {"t": {"state": "ENABLED", "variants": {"true": 1, "false": 0}, "targeting": {"$ref": "e"}}}}`)
	b, err := Rollout(old, new, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := mustParse(t, string(b))
	if c := Changed(old, got); len(c) != 0 {
		t.Errorf("at 0 the document evaluates unlike old: changed %v\n%s", c, b)
	}
}

func TestRolloutVariants(t *testing.T) {
	for _, tc := range []struct {
		name          string
		old, new      string
		wantVariants  map[string]any
		wantDefault   any
		wantErr       string
		wantTargeting []string // substrings of the targeting JSON
	}{
		{
			name:         "same variants",
			old:          flagOn,
			new:          flagOff,
			wantVariants: map[string]any{"on": true, "off": false},
			wantDefault:  "on",
		},
		{
			name:          "variant added",
			old:           `"f": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a", "targeting": {"var": "v"}}`,
			new:           `"f": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a", "targeting": {"var": "v"}}`,
			wantVariants:  map[string]any{"a": "A", "b": "B"},
			wantDefault:   "a",
			wantTargeting: []string{`"in":[{"cat":[{"var":"v"}]},["b"]]},"serin-unknown-variant"`},
		},
		{
			name:          "name clash",
			old:           `"f": {"state": "ENABLED", "variants": {"blue": "#00f", "blue-new": "#00e", "red": "#f00"}, "defaultVariant": "blue"}`,
			new:           `"f": {"state": "ENABLED", "variants": {"blue": "#00d", "red": "#f00"}, "defaultVariant": "blue", "targeting": {"var": "v"}}`,
			wantVariants:  map[string]any{"blue": "#00f", "blue-new": "#00e", "blue-new-2": "#00d", "red": "#f00"},
			wantDefault:   "blue",
			wantTargeting: []string{`{"===":[{"cat":[{"var":"v"}]},"blue"]},"blue-new-2"`, `{"===":[{"var":"v"},null]},"blue-new-2"`},
		},
		{
			name:         "disabled to enabled",
			old:          strings.Replace(flagOn, "ENABLED", "DISABLED", 1),
			new:          flagOff,
			wantVariants: map[string]any{"on": true, "off": false},
			wantDefault:  nil,
		},
		{
			name:         "added flag",
			old:          other,
			new:          other + `,` + flagOn,
			wantVariants: map[string]any{"on": true, "off": false},
			wantDefault:  nil,
		},
		{
			name:    "type change",
			old:     flagOn,
			new:     `"f": {"state": "ENABLED", "variants": {"on": "yes"}, "defaultVariant": "on"}`,
			wantErr: "change type from boolean to string",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, new := pair(t, tc.old, tc.new)
			b, err := Rollout(old, new, 30)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `flag "f"`) {
					t.Fatalf("err = %v, want one naming flag f and saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := flagOf(t, b, "f")
			if f["state"] != StateEnabled {
				t.Errorf("state %v", f["state"])
			}
			if !reflect.DeepEqual(f["variants"], tc.wantVariants) {
				t.Errorf("variants %v, want %v", f["variants"], tc.wantVariants)
			}
			if f["defaultVariant"] != tc.wantDefault {
				t.Errorf("defaultVariant %v, want %v", f["defaultVariant"], tc.wantDefault)
			}
			targeting, _ := json.Marshal(f["targeting"])
			for _, s := range tc.wantTargeting {
				if !strings.Contains(string(targeting), s) {
					t.Errorf("targeting lacks %s:\n%s", s, targeting)
				}
			}
			if _, err := Parse(b); err != nil {
				t.Errorf("the result does not parse: %v", err)
			}
		})
	}
}

func TestRolloutBothDisabled(t *testing.T) {
	old, new := pair(t, strings.Replace(flagOn, "ENABLED", "DISABLED", 1), strings.Replace(flagOff, "ENABLED", "DISABLED", 1))
	b, err := Rollout(old, new, 50)
	if err != nil {
		t.Fatal(err)
	}
	if got := flagOf(t, b, "f"); got["state"] != StateDisabled || got["defaultVariant"] != "off" {
		t.Errorf("both sides disabled: got %v, want new's flag", got)
	}
	// Removed while disabled: the flag stays (disabled) until promotion.
	old, new = pair(t, strings.Replace(flagOn, "ENABLED", "DISABLED", 1)+`,`+other, other)
	if b, err = Rollout(old, new, 50); err != nil {
		t.Fatal(err)
	}
	if got := flagOf(t, b, "f"); got["state"] != StateDisabled {
		t.Errorf("removed disabled flag: got %v", got)
	}
	if b, err = Rollout(old, new, 100); err != nil {
		t.Fatal(err)
	}
	if got := flagOf(t, b, "f"); got != nil {
		t.Errorf("removed flag at 100: got %v, want none", got)
	}
}

// TestParseRefBomb: evaluators that refer to each other twice over, level
// by level, would resolve to 2^40 values; Parse refuses the document
// instead of hanging.
func TestParseRefBomb(t *testing.T) {
	var ev []string
	for i := range 40 {
		ev = append(ev, fmt.Sprintf(`"e%d": {"and": [{"$ref": "e%d"}, {"$ref": "e%d"}]}`, i, i+1, i+1))
	}
	ev = append(ev, `"e40": true`)
	doc := `{"$evaluators": {` + strings.Join(ev, ",") + `}, "flags": {"f": {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "a", "targeting": {"$ref": "e0"}}}}`
	start := time.Now()
	_, err := Parse([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), "over 1000000 JSON values") {
		t.Fatalf("Parse: %v, want the resolution bound", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Parse took %v to refuse the document", d)
	}
	t.Logf("refused in %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestChanges(t *testing.T) {
	doc := func(flags string) *Document { return mustParse(t, `{"flags": {`+flags+`}}`) }
	for _, tc := range []struct {
		name     string
		old, new string
		want     []Change
	}{
		{"a change of default", flagOff, flagOn, []Change{{Key: "f", OldVariant: "off", NewVariant: "on"}}},
		{"no change", flagOn, flagOn, []Change{}},
		{"the new side's name in the split",
			`"f": {"state": "ENABLED", "variants": {"blue": "#00f"}, "defaultVariant": "blue"}`,
			`"f": {"state": "ENABLED", "variants": {"blue": "#00e"}, "defaultVariant": "blue"}`,
			[]Change{{Key: "f", OldVariant: "blue", NewVariant: "blue-new"}}},
		{"flags only new has; DISABLED gives the code default", flagOn,
			flagOn + `, "g": {"state": "DISABLED", "variants": {"x": 1}, "defaultVariant": "x"}, "h": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x"}`,
			[]Change{{Key: "g"}, {Key: "h", NewVariant: "x"}}},
	} {
		if got := Changes(doc(tc.old), doc(tc.new)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Changes = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
