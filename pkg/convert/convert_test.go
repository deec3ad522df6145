package convert

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// corpus returns the input manifests of testdata.
func corpus(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, ".golden.yaml") })
	if len(files) < 11 {
		t.Fatalf("corpus has %d files, want at least 11", len(files))
	}
	return files
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func formatWarnings(ws []Warning) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintln(&b, w.String())
	}
	return b.String()
}

// TestGolden compares the output and the warnings for every corpus file
// with testdata/<name>.golden.yaml and <name>.warnings.golden.
func TestGolden(t *testing.T) {
	for _, in := range corpus(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			out, warnings, err := Convert(readFile(t, in))
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(in, ".yaml")
			golden := map[string]string{
				base + ".golden.yaml":     string(out),
				base + ".warnings.golden": formatWarnings(warnings),
			}
			for file, got := range golden {
				if *update {
					if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if diff := cmp.Diff(string(readFile(t, file)), got); diff != "" {
					t.Errorf("%s differs (-want +got; go test ./pkg/convert -update rewrites it):\n%s", file, diff)
				}
			}
		})
	}
}

// TestEveryFieldHandled walks the leaves of every corpus document and
// checks that the conversion mapped each one or warned about it (or about
// one of its parents).
func TestEveryFieldHandled(t *testing.T) {
	for _, in := range corpus(t) {
		var templates []map[string]any
		var objs []map[string]any
		for _, raw := range splitDocuments(string(readFile(t, in))) {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(raw), &obj); err != nil {
				t.Fatal(err)
			}
			if obj["kind"] == "AnalysisTemplate" {
				templates = append(templates, obj)
			}
			objs = append(objs, obj)
		}
		for _, obj := range objs {
			tr := newTracker(obj)
			converted, err := convertObject(tr, templates)
			if err != nil {
				t.Fatal(err)
			}
			if converted == nil {
				continue // copied unchanged
			}
			warned := map[string]bool{}
			for _, w := range tr.finish() {
				warned[w.Path] = true
			}
			for _, leaf := range leaves("", obj) {
				ok := false
				for p := leaf; ; p = parentPath(p) {
					if tr.used[p] || warned[p] {
						ok = true
						break
					}
					if p == "" {
						break
					}
				}
				if !ok {
					t.Errorf("%s %s: %s neither mapped nor warned about", in, docID(obj), leaf)
				}
			}
		}
	}
}

func leaves(path string, v any) []string {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			out = append(out, leaves(join(k), e)...)
		}
	case []any:
		for i, e := range v {
			out = append(out, leaves(fmt.Sprintf("%s[%d]", path, i), e)...)
		}
	}
	if len(out) == 0 {
		return []string{path}
	}
	return out
}

// TestUnknownFieldsWarned adds a field Serin cannot know at several depths
// of every converted corpus document and expects a warning for that path,
// or for a parent the converter reports as a whole. Free-form fields, which take any key, are skipped.
func TestUnknownFieldsWarned(t *testing.T) {
	for _, in := range corpus(t) {
		for i, raw := range splitDocuments(string(readFile(t, in))) {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(raw), &obj); err != nil {
				t.Fatal(err)
			}
			if g := group(obj); g != flaggerGroup && g != argoGroup {
				continue
			}
			var paths []string
			var add func(path string, v any, depth int)
			add = func(path string, v any, depth int) {
				if l, ok := v.([]any); ok {
					for i, e := range l {
						add(fmt.Sprintf("%s[%d]", path, i), e, depth)
					}
					return
				}
				m, ok := v.(map[string]any)
				if !ok || depth > 4 {
					return
				}
				m["serinTestUnknown"] = "x"
				paths = append(paths, strings.TrimPrefix(path+".serinTestUnknown", "."))
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					if freeForm[k] {
						continue
					}
					add(path+"."+k, m[k], depth+1)
				}
			}
			add("", obj, 0)
			doc, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			_, warnings, err := Convert(doc)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if !slices.ContainsFunc(warnings, func(w Warning) bool { return w.Path == p || strings.HasPrefix(p, w.Path+".") }) {
					t.Errorf("%s document %d: no warning for %s or a parent", in, i+1, p)
				}
			}
		}
	}
}

// TestRoundTrip converts every output again: Serin objects and other kinds
// are copied unchanged, so the bytes are the same and nothing is warned.
func TestRoundTrip(t *testing.T) {
	for _, in := range corpus(t) {
		out, _, err := Convert(readFile(t, in))
		if err != nil {
			t.Fatal(err)
		}
		again, warnings, err := Convert(out)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(out), string(again)); diff != "" {
			t.Errorf("%s: second conversion differs (-first +second):\n%s", in, diff)
		}
		if len(warnings) > 0 {
			t.Errorf("%s: second conversion warned: %v", in, warnings)
		}
	}
}

// TestOutputValidates decodes every converted object strictly into its
// typed API and checks the rules of the Serin CRDs that a conversion
// computes values for.
func TestOutputValidates(t *testing.T) {
	kinds := 0
	for _, in := range corpus(t) {
		out, _, err := Convert(readFile(t, in))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range splitDocuments(string(out)) {
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(doc, "status:") || strings.Contains(doc, "creationTimestamp") {
				t.Errorf("%s: output has server fields:\n%s", in, doc)
			}
			var obj any
			switch head.APIVersion + " " + head.Kind {
			case "serin.dev/v1beta1 Canary":
				c := &serinv1.Canary{}
				obj = c
				defer func() { checkCanary(t, in, c) }()
			case "serin.dev/v1beta1 MetricTemplate":
				obj = &serinv1.MetricTemplate{}
			case "serin.dev/v1beta1 AlertProvider":
				obj = &serinv1.AlertProvider{}
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			default:
				if head.APIVersion == "flagger.app/v1beta1" || head.APIVersion == "argoproj.io/v1alpha1" {
					t.Errorf("%s: %s %s left in the output", in, head.APIVersion, head.Kind)
				}
				continue
			}
			kinds++
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s: %s does not decode strictly: %v\n%s", in, head.Kind, err, doc)
			}
		}
	}
	if kinds < 15 {
		t.Errorf("validated %d objects, want at least 15", kinds)
	}
}

func checkCanary(t *testing.T, in string, c *serinv1.Canary) {
	t.Helper()
	a := c.Spec.Analysis
	modes := 0
	for _, set := range []bool{a.Iterations > 0, a.StepWeight > 0, len(a.StepWeights) > 0} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		t.Errorf("%s: Canary %s sets %d of iterations, stepWeight, stepWeights", in, c.Name, modes)
	}
	if d, err := time.ParseDuration(a.Interval); err != nil || d < minInterval {
		t.Errorf("%s: Canary %s interval %q is not a duration of at least 10s", in, c.Name, a.Interval)
	}
	if c.Spec.Service.Port < 1 || c.Spec.TargetRef.Name == "" {
		t.Errorf("%s: Canary %s lacks a service port or target", in, c.Name)
	}
	if a.StepWeight > 0 && a.MaxWeight > 0 && a.StepWeight > a.MaxWeight {
		t.Errorf("%s: Canary %s stepWeight exceeds maxWeight", in, c.Name)
	}
}

// TestEnumsMatchCRDs keeps the converter's lists of accepted values in step
// with the Serin CRDs.
func TestEnumsMatchCRDs(t *testing.T) {
	crd := func(file string) map[string]any {
		var m map[string]any
		if err := yaml.Unmarshal(readFile(t, filepath.Join("..", "..", "artifacts", "crds", file)), &m); err != nil {
			t.Fatal(err)
		}
		versions := m["spec"].(map[string]any)["versions"].([]any)
		return versions[0].(map[string]any)["schema"].(map[string]any)["openAPIV3Schema"].(map[string]any)
	}
	enum := func(schema map[string]any, path ...string) []string {
		v := any(schema)
		for _, p := range path {
			s := v.(map[string]any)
			if p == "[]" {
				v = s["items"]
				continue
			}
			v = s["properties"].(map[string]any)[p]
		}
		var out []string
		for _, e := range v.(map[string]any)["enum"].([]any) {
			out = append(out, e.(string))
		}
		return out
	}
	canary := crd("serin.dev_canaries.yaml")
	for _, c := range []struct {
		got  []string
		want []string
	}{
		{serinProviders, enum(canary, "spec", "provider")},
		{serinTargetKinds, enum(canary, "spec", "targetRef", "kind")},
		{serinHookTypes, enum(canary, "spec", "analysis", "webhooks", "[]", "type")},
		{serinSeverities, enum(canary, "spec", "analysis", "alerts", "[]", "severity")},
		{serinAlertTypes, enum(crd("serin.dev_alertproviders.yaml"), "spec", "type")},
		{serinMetricProviders, enum(crd("serin.dev_metrictemplates.yaml"), "spec", "provider", "type")},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("enum differs from the CRD (-crd +converter):\n%s", diff)
		}
	}
}

var freeForm = map[string]bool{
	"metadata": true, "status": true, "serinTestUnknown": true,
	"matchLabels": true, "retries": true, "trafficPolicy": true, "headers": true,
	"corsPolicy": true, "match": true, "templateVariables": true,
}

func TestConditions(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		in      string
		rng     *serinv1.CanaryThresholdRange
		success string
		warned  bool
	}{
		{in: "result[0] >= 0.95", rng: &serinv1.CanaryThresholdRange{Min: f(0.95)}},
		{in: "result <= 500", rng: &serinv1.CanaryThresholdRange{Max: f(500)}},
		{in: "result[0] >= 0 && result[0] <= 1", rng: &serinv1.CanaryThresholdRange{Min: f(0), Max: f(1)}},
		{in: "result[0] >= 0 and result[0] <= 1", rng: &serinv1.CanaryThresholdRange{Min: f(0), Max: f(1)}},
		{in: "result[0] > 0.95", success: "result > 0.95"},
		{in: "0.95 <= result[0]", success: "0.95 <= result"},
		{in: "(result[0] < 1 or result[0] == 5)", success: "(result < 1.0 || result == 5.0)"},
		{in: "result[0] >= 1 && result[0] >= 2", success: "result >= 1.0 && result >= 2.0"},
		{in: "result[0] >=", warned: true},
		{in: "len(result) == 0", warned: true},
		{in: "result.ok == true", warned: true},
		{in: "", warned: true},
	} {
		tr := newTracker(map[string]any{"c": c.in})
		rng, success := condition(tr.root().get("c"), c.in)
		if diff := cmp.Diff(c.rng, rng); diff != "" {
			t.Errorf("%q: thresholdRange (-want +got):\n%s", c.in, diff)
		}
		if success != c.success {
			t.Errorf("%q: successCondition %q, want %q", c.in, success, c.success)
		}
		if got := len(tr.warnings) > 0; got != c.warned {
			t.Errorf("%q: warned %v, want %v", c.in, got, c.warned)
		}
	}
}

func TestDurations(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
		ok   bool
	}{
		{in: float64(30), want: "30s", ok: true},
		{in: "90", want: "90s", ok: true},
		{in: "1h", want: "1h", ok: true},
		{in: "90m", want: "90m", ok: true},
		{in: "1m30s", want: "90s", ok: true},
		{in: "1.5s", want: "1500ms", ok: true},
		{in: "soon"},
		{in: float64(-1)},
		{in: true},
	} {
		tr := newTracker(map[string]any{"d": c.in})
		d, ok := argoDuration(tr.root().get("d"))
		if ok != c.ok || (ok && formatDuration(d) != c.want) {
			t.Errorf("%v: got %v %v, want %q %v", c.in, d, ok, c.want, c.ok)
		}
		if !ok && len(tr.warnings) != 1 {
			t.Errorf("%v: %d warnings, want 1", c.in, len(tr.warnings))
		}
	}
}

func TestConvertStreams(t *testing.T) {
	serin := "# kept as written\napiVersion: serin.dev/v1beta1\nkind: AlertProvider\nmetadata:\n  name: a\nspec:\n  type: slack\n  address: https://example.com\n"
	for _, c := range []struct {
		name, in, want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "comments only", in: "# nothing\n---\n", want: ""},
		{name: "leading separator", in: "---\n" + serin, want: serin},
		{name: "separators and blank lines", in: "\n\n" + serin + "\n\n--- \n" + serin + "...\n", want: serin + "---\n" + serin + "...\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, warnings, err := Convert([]byte(c.in))
			if err != nil || len(warnings) > 0 {
				t.Fatalf("err %v, warnings %v", err, warnings)
			}
			if diff := cmp.Diff(c.want, string(out)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestConvertLeavesFlagRolloutsAlone: a Serin Canary of flagd flags, with
// its ConfigMap, is Serin's already and is copied as written.
func TestConvertLeavesFlagRolloutsAlone(t *testing.T) {
	in, err := os.ReadFile("../../kustomize/example/flags/canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cm, err := os.ReadFile("../../kustomize/example/flags/flags.yaml")
	if err != nil {
		t.Fatal(err)
	}
	stream := string(in) + "---\n" + string(cm)
	out, warnings, err := Convert([]byte(stream))
	if err != nil || len(warnings) > 0 {
		t.Fatalf("err %v, warnings %v", err, warnings)
	}
	if diff := cmp.Diff(stream, string(out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConvertErrors(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{name: "bad YAML", in: "kind: [\n", want: "document 1"},
		{name: "not an object", in: "kind: Service\n---\n- a\n", want: "document 2"},
		{name: "wrong type", in: "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: p\nspec:\n  service:\n    port: eighty\n", want: "Canary/p"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Convert([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one naming %q", err, c.want)
			}
		})
	}
}

func TestOtherKinds(t *testing.T) {
	in := "apiVersion: argoproj.io/v1alpha1\nkind: Experiment\nmetadata:\n  name: e\nspec:\n  duration: 5m\n"
	out, warnings, err := Convert([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("output %q, want the input unchanged", out)
	}
	want := []Warning{{Doc: "Experiment/e", Path: "apiVersion", Message: "argoproj.io/v1alpha1 Experiment has no Serin equivalent; copied unchanged"}}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
