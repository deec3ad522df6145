package flags

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/serin-dev/serin/pkg/testharness/flagd"
)

// The conformance test evaluates what Rollout writes with flagd's own
// evaluator, the npm package @openfeature/flagd-core, over many
// evaluation contexts, and checks that every context gets exactly what
// the old or the new definition alone gives it, on the side Bucket says.

var conformanceWeights = []int{1, 5, 25, 50, 100}

// conformanceContexts are 10,000 evaluation contexts with a targeting key
// and attributes the cases' rules read, then 100 without a targeting key.
func conformanceContexts() (keyed int, contexts []map[string]any) {
	countries := []string{"US", "CA", "GB", "DE", "MX", "FR", "JP"}
	domains := []string{"example.com", "faas.com", "corp.io"}
	plans := []string{"free", "pro", "enterprise"}
	attrs := func(i int) map[string]any {
		return map[string]any{
			"country": countries[i%len(countries)],
			"email":   fmt.Sprintf("user%d@%s", i, domains[(i/7)%len(domains)]),
			"plan":    plans[(i/3)%len(plans)],
			"version": fmt.Sprintf("2.%d.0", i%5),
		}
	}
	for i := range 10000 {
		c := attrs(i)
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		c["targetingKey"] = fmt.Sprintf("%x-%x-%x", sum[:4], sum[4:6], sum[6:12])
		contexts = append(contexts, c)
	}
	for i := range 100 {
		contexts = append(contexts, attrs(i))
	}
	return 10000, contexts
}

type conformanceCase struct {
	name     string
	old, new string
}

var conformanceCases = []conformanceCase{
	{
		name: "variant flip, several flags and a shared evaluator",
		old: `{"$schema": "https://flagd.dev/schema/v0/flags.json",
		 "metadata": {"team": "checkout"},
		 "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@faas.com"]}},
		 "flags": {
		  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
		  "beta-access": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
		   "targeting": {"if": [{"$ref": "staff"}, "on", null]}},
		  "banner": {"state": "ENABLED", "variants": {"a": "Welcome", "b": "Hello"}, "defaultVariant": "a",
		   "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "b", null]}, "metadata": {"owner": "web"}}}}`,
		new: `{"$schema": "https://flagd.dev/schema/v0/flags.json",
		 "metadata": {"team": "checkout"},
		 "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@corp.io"]}},
		 "flags": {
		  "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
		  "beta-access": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
		   "targeting": {"if": [{"$ref": "staff"}, "on", null]}},
		  "banner": {"state": "ENABLED", "variants": {"a": "Welcome", "b": "Hello"}, "defaultVariant": "a",
		   "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "b", null]}, "metadata": {"owner": "web"}}}}`,
	},
	{
		name: "targeting change with a country rule",
		old: `{"flags": {"free-shipping": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
		  "targeting": {"if": [{"in": [{"var": "country"}, ["US", "CA"]]}, "on", null]}}}}`,
		new: `{"$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@faas.com"]}},
		 "flags": {"free-shipping": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
		  "targeting": {"if": [{"in": [{"var": "country"}, ["US", "CA", "MX"]]}, "on",
		   {"if": [{"$ref": "staff"}, "on", "off"]}]}}}}`,
	},
	{
		name: "state ENABLED to DISABLED",
		old: `{"flags": {"recommendations": {"state": "ENABLED", "variants": {"ml": "ml-v2", "classic": "classic"}, "defaultVariant": "classic",
		  "targeting": {"if": [{"===": [{"var": "plan"}, "pro"]}, "ml", "classic"]}}}}`,
		new: `{"flags": {"recommendations": {"state": "DISABLED", "variants": {"ml": "ml-v2", "classic": "classic"}, "defaultVariant": "classic",
		  "targeting": {"if": [{"===": [{"var": "plan"}, "pro"]}, "ml", "classic"]}}}}`,
	},
	{
		name: "new variant added, and a variant whose value changes",
		old: `{"flags": {
		  "theme": {"state": "ENABLED", "variants": {"light": "light", "dark": "dark"}, "defaultVariant": "light",
		   "targeting": {"fractional": [["light", 50], ["dark", 50]]}},
		  "button-color": {"state": "ENABLED", "variants": {"blue": "#0000ff", "red": "#ff0000"}, "defaultVariant": "red",
		   "targeting": {"if": [{"in": [{"var": "country"}, ["JP", "DE"]]}, "blue", null]}}}}`,
		new: `{"flags": {
		  "theme": {"state": "ENABLED", "variants": {"light": "light", "dark": "dark", "contrast": "high-contrast"}, "defaultVariant": "light",
		   "targeting": {"fractional": [["light", 40], ["dark", 40], ["contrast", 20]]}},
		  "button-color": {"state": "ENABLED", "variants": {"blue": "#1e90ff", "red": "#ff0000"}, "defaultVariant": "blue",
		   "targeting": {"if": [{"in": [{"var": "country"}, ["JP", "DE", "FR"]]}, "blue", "red"]}}}}`,
	},
	{
		name: "defaultVariant change",
		old: `{"flags": {"search-ranking": {"state": "ENABLED", "variants": {"bm25": "bm25", "neural": "neural", "hybrid": "hybrid"}, "defaultVariant": "bm25",
		  "targeting": {"if": [{"==": [{"var": "plan"}, "enterprise"]}, "neural", null]}}}}`,
		new: `{"flags": {"search-ranking": {"state": "ENABLED", "variants": {"bm25": "bm25", "neural": "neural", "hybrid": "hybrid"}, "defaultVariant": "hybrid",
		  "targeting": {"if": [{"==": [{"var": "plan"}, "enterprise"]}, "neural", null]}}}}`,
	},
	{
		name: "enabled, added, removed flags and boolean-named variants",
		old: `{"flags": {
		  "dark-launch": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
		  "legacy-export": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
		  "discount": {"state": "ENABLED", "variants": {"true": 10, "false": 0}, "defaultVariant": "false",
		   "targeting": {"in": [{"var": "country"}, ["US", "CA"]]}},
		  "api-version": {"state": "ENABLED", "variants": {"v1": "v1", "v2": "v2"}, "defaultVariant": null,
		   "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "2.2.0"]}, "v2", null]}}}}`,
		new: `{"flags": {
		  "dark-launch": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
		   "targeting": {"if": [{"==": [{"var": "plan"}, "free"]}, "on", null]}},
		  "onboarding": {"state": "ENABLED", "variants": {"short": "short", "long": "long"}, "defaultVariant": "short"},
		  "discount": {"state": "ENABLED", "variants": {"true": 15, "false": 0}, "defaultVariant": "false",
		   "targeting": {"in": [{"var": "country"}, ["US", "CA", "GB"]]}},
		  "api-version": {"state": "ENABLED", "variants": {"v1": "v1", "v2": "v2", "v3": "v3"}, "defaultVariant": "v1",
		   "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "2.3.0"]}, "v3", null]}}}}`,
	},
}

// probeDoc is a flags document with a flag per key in keys that returns
// the bucket (0..99) flagd-core gives a context in that flag's split.
func probeDoc(keys []string) flagd.Doc {
	probe := map[string]any{}
	for _, k := range keys {
		variants := map[string]any{}
		buckets := []any{map[string]any{"cat": []any{bucketPrefix + k + "/", map[string]any{"var": "targetingKey"}}}}
		for i := range 100 {
			variants[fmt.Sprint(i)] = fmt.Sprint(i)
			buckets = append(buckets, []any{fmt.Sprint(i), 1})
		}
		probe["probe/"+k] = map[string]any{"state": "ENABLED", "variants": variants, "defaultVariant": nil,
			"targeting": map[string]any{"fractional": buckets}}
	}
	b, _ := json.Marshal(map[string]any{"flags": probe})
	return flagd.Doc{Text: string(b), Flags: sortedKeys(probe)}
}

// probeResult is probeDoc's result for a key in bucket b.
func probeResult(b float64) string {
	n := fmt.Sprint(int(b))
	return fmt.Sprintf(`[%q,%q]`, n, n)
}

// TestConformanceControls checks the checks: flagd-core's strict parsing
// refuses a document against the schema, and (for the record) how its
// hash treats targeting keys that are not ASCII.
func TestConformanceControls(t *testing.T) {
	dir := flagd.Install(t)
	keys := []string{"user-1", "ユーザー-1", "müller", "😀-2", "ascii-only"}
	var contexts []map[string]any
	for _, k := range keys {
		contexts = append(contexts, map[string]any{"targetingKey": k})
	}
	res := flagd.Evaluate(t, dir, map[string]flagd.Doc{
		"invalid": {Text: `{"flags": {"f": {"state": "ENABLED", "variants": {"on": true, "off": "no"}, "defaultVariant": "on"}}}`, Flags: []string{"f"}},
		"probe":   probeDoc([]string{"f"}),
	}, contexts)
	if res["invalid"].SchemaError == nil {
		t.Error("flagd-core's strict parsing accepted a document with mixed variant types: the schema check checks nothing")
	}
	for i, k := range keys {
		got, want := res["probe"].Results["probe/f"][i], probeResult(Bucket("f", k))
		switch {
		case got == want:
		case strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789-") == "":
			t.Errorf("key %q: flagd-core bucket %s, Go Bucket %s", k, got, want)
		default:
			t.Logf("key %q (not ASCII): flagd-core bucket %s, Go Bucket %s (flagd-core hashes UTF-16 code units, flagd UTF-8 bytes)", k, got, want)
		}
	}
}

func TestConformanceWithFlagdCore(t *testing.T) {
	dir := flagd.Install(t)
	keyed, contexts := conformanceContexts()
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			old, err := Parse([]byte(tc.old))
			if err != nil {
				t.Fatalf("old: %v", err)
			}
			new, err := Parse([]byte(tc.new))
			if err != nil {
				t.Fatalf("new: %v", err)
			}
			changed := Changed(old, new)
			if len(changed) == 0 {
				t.Fatal("the case changes no flag")
			}
			all := map[string]bool{}
			for _, k := range append(old.Flags(), new.Flags()...) {
				all[k] = true
			}
			flags := sortedKeys(all)
			docs := map[string]flagd.Doc{"old": {Text: tc.old, Flags: flags}, "new": {Text: tc.new, Flags: flags}}
			for _, w := range conformanceWeights {
				b, err := Rollout(old, new, w)
				if err != nil {
					t.Fatalf("Rollout at %d: %v", w, err)
				}
				if _, err := Parse(b); err != nil {
					t.Errorf("Rollout at %d does not parse again: %v", w, err)
				}
				docs[fmt.Sprint(w)] = flagd.Doc{Text: string(b), Flags: flags}
			}
			docs["probe"] = probeDoc(changed)
			res := flagd.Evaluate(t, dir, docs, contexts)
			for name, d := range res {
				if d.SchemaError != nil {
					t.Errorf("document %s fails flagd's schema: %s\n%s", name, *d.SchemaError, docs[name].Text)
				}
			}

			// Go's Evaluate agrees with flagd-core on every document,
			// flag and context.
			for _, name := range sortedKeys(docs) {
				d, err := Parse([]byte(docs[name].Text))
				if err != nil {
					t.Errorf("document %s: %v", name, err)
					continue
				}
				n, bad := 0, 0
				for _, k := range docs[name].Flags {
					want := res[name].Results[k]
					for i, c := range contexts {
						n++
						if got := goResult(d, k, c); !sameAsFlagd(got, want[i]) {
							if bad < 3 {
								t.Errorf("document %s, flag %s, context %d: Go Evaluate %s, flagd-core %s", name, k, i, got, want[i])
							}
							bad++
						}
					}
				}
				t.Logf("Go Evaluate vs flagd-core, document %-5s: %d evaluations, %d mismatches", name, n, bad)
			}

			// Go's Bucket agrees with flagd-core's bucketing.
			for _, k := range changed {
				got := res["probe"].Results["probe/"+k]
				bad := 0
				for i := range keyed {
					tk := contexts[i]["targetingKey"].(string)
					if want := probeResult(Bucket(k, tk)); got[i] != want {
						if bad < 3 {
							t.Errorf("flag %s, key %s: flagd-core bucket %s, Go Bucket %v", k, tk, got[i], Bucket(k, tk))
						}
						bad++
					}
				}
				if bad > 0 {
					t.Errorf("flag %s: Bucket disagrees with flagd-core for %d of %d keys", k, bad, keyed)
				}
			}

			for _, k := range flags {
				oldRes, newRes := res["old"].Results[k], res["new"].Results[k]
				changedFlag := slices.Contains(changed, k)
				prevNew := map[int]bool{}
				for _, w := range conformanceWeights {
					got := res[fmt.Sprint(w)].Results[k]
					mismatches, onNew, distinct, observedNew, flips := 0, 0, 0, 0, 0
					for i, c := range contexts {
						tk, _ := c["targetingKey"].(string)
						wantNew := OnNewSide(k, tk, w)
						want := oldRes[i]
						if wantNew {
							want = newRes[i]
							if i < keyed {
								onNew++
							}
						}
						if !sameResult(got[i], want) {
							if mismatches < 3 {
								t.Errorf("flag %s at %d%%, context %d (new side %v): got %s, want %s (old %s, new %s)",
									k, w, i, wantNew, got[i], want, oldRes[i], newRes[i])
							}
							mismatches++
						}
						if !sameResult(oldRes[i], newRes[i]) {
							distinct++
							isNew := sameResult(got[i], newRes[i])
							if isNew {
								observedNew++
							}
							if prevNew[i] && !isNew {
								flips++
							}
							prevNew[i] = isNew
						}
					}
					if mismatches > 0 {
						t.Errorf("flag %s at %d%%: %d of %d contexts get neither their side's result", k, w, mismatches, len(contexts))
					}
					if flips > 0 {
						t.Errorf("flag %s at %d%%: %d contexts left the new side as the weight grew", k, w, flips)
					}
					share := 100 * float64(onNew) / float64(keyed)
					if changedFlag && (share < float64(w)-2 || share > float64(w)+2) {
						t.Errorf("flag %s at %d%%: %.2f%% of contexts on the new side", k, w, share)
					}
					observed := "n/a (same result on both sides)"
					if distinct > 0 {
						observed = fmt.Sprintf("%.2f%% of %d contexts whose result differs", 100*float64(observedNew)/float64(distinct), distinct)
					}
					if changedFlag {
						t.Logf("flag %-15s w=%3d: new side %6.2f%% of %d keyed contexts; observed new %s; mismatches %d; left new side %d",
							k, w, share, keyed, observed, mismatches, flips)
					}
				}
			}
		})
	}
}

// sameResult compares evaluation results: both the code default, or the
// same value with the same variant (a variant Rollout renamed for a name
// clash counts as the same).
func sameResult(got, want string) bool {
	if got == want {
		return true
	}
	if strings.HasPrefix(got, "~") || strings.HasPrefix(want, "~") {
		return strings.HasPrefix(got, "~") && strings.HasPrefix(want, "~")
	}
	var g, w [2]any
	if json.Unmarshal([]byte(got), &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	gv, _ := json.Marshal(g[1])
	wv, _ := json.Marshal(w[1])
	if string(gv) != string(wv) {
		return false
	}
	gn, _ := g[0].(string)
	wn, _ := w[0].(string)
	return gn == wn || strings.HasPrefix(gn, wn+"-new")
}

// goResult is Document.Evaluate's result in evaluate.js's form.
func goResult(d *Document, key string, ctx map[string]any) string {
	r, err := d.Evaluate(key, ctx)
	var ee *EvalError
	switch {
	case errors.As(err, &ee):
		return "~" + ee.Code
	case err != nil:
		return "~" + err.Error()
	case r.CodeDefault():
		return "~" + r.Reason
	}
	b, err := json.Marshal([]any{r.Variant, r.Value})
	if err != nil {
		return "~" + err.Error()
	}
	return string(b)
}

// sameAsFlagd compares a Go result with flagd-core's: the same variant
// and value, or the code default for the same reason or error code.
func sameAsFlagd(got, want string) bool {
	if got == want {
		return true
	}
	if strings.HasPrefix(got, "~") || strings.HasPrefix(want, "~") {
		return false
	}
	var g, w [2]any
	if json.Unmarshal([]byte(got), &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	return g[0] == w[0] && canonical(g[1]) == canonical(w[1])
}

// TestRulesWithFlagdCore checks the operator table of evaluate_test.go
// against flagd-core's own evaluation of each rule.
func TestRulesWithFlagdCore(t *testing.T) {
	dir := flagd.Install(t)
	got := flagdCoreRules(t, dir, ruleCases)
	bad := 0
	for i, c := range ruleCases {
		var ok bool
		if strings.HasPrefix(c.want, "!") {
			ok = strings.HasPrefix(got[i], "!")
		} else {
			ok = !strings.HasPrefix(got[i], "!") && canonical(decodeJSON(t, got[i])) == canonical(decodeJSON(t, c.want))
		}
		if !ok {
			t.Errorf("%s over %s: flagd-core %s, the table (and Go) %s", c.rule, c.ctx, got[i], c.want)
			bad++
		}
	}
	t.Logf("%d rules, %d where flagd-core differs from the table", len(ruleCases), bad)
}

// flagdCoreRules evaluates rule cases with testdata/rules.js: each
// result as JSON, or "!" and why for a rule that fails.
func flagdCoreRules(t *testing.T, dir string, cases []ruleCase) []string {
	t.Helper()
	type in struct {
		FlagKey string `json:"flagKey"`
		Rule    any    `json:"rule"`
		Context any    `json:"context"`
	}
	var input []in
	for _, c := range cases {
		input = append(input, in{ruleFlagKey, decodeJSON(t, c.rule), decodeJSON(t, c.ctx)})
	}
	tmp := t.TempDir()
	b, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	inPath, outPath := filepath.Join(tmp, "in.json"), filepath.Join(tmp, "out.json")
	if err := os.WriteFile(inPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "rules.js"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "node", script, dir, inPath, outPath).CombinedOutput(); err != nil {
		t.Fatalf("node rules.js: %v\n%s", err, out)
	}
	var got []string
	if b, err = os.ReadFile(outPath); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil || len(got) != len(cases) {
		t.Fatalf("rules.js output: %v (%d results for %d rules)", err, len(got), len(cases))
	}
	return got
}
