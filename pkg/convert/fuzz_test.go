package convert

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzConvert converts arbitrary YAML streams, seeded with every example
// of testdata (Flagger and Argo Rollouts manifests) and small variations.
// Convert must not panic; it must give the same bytes and warnings twice
// (no map order leaks into the output); on success every output document
// is a YAML object, converting the output again yields the same bytes, as
// the package documents; and the output is bounded by the input as
// parsed (aliases expanded).
func FuzzConvert(f *testing.F) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range inputs {
		if strings.HasSuffix(p, ".golden.yaml") {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		"",
		"# only a comment\n",
		"---\n---\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n--- # a comment\na: 1\n",
		"apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec: {}\n",
		"apiVersion: flagger.app/v1beta1\nkind: Canary\n",
		"apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec: {strategy: {canary: {steps: [{setWeight: 10}, {pause: {}}]}}}\n",
		"apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: a}\nspec: {metrics: [{name: m, provider: {prometheus: {query: q}}}]}\n",
		"apiVersion: flagger.app/v1alpha3\nkind: Canary\n",
		"a: &x [1, 2]\nb: [*x, *x]\n",
		"- a list\n",
		"apiVersion: serin.dev/v1beta1\nkind: Canary\nmetadata:\n  name: s\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 64<<10 {
			t.Skip("larger than a manifest")
		}
		out, warnings, err := Convert(in)
		out2, warnings2, err2 := Convert(in)
		if !bytes.Equal(out, out2) || len(warnings) != len(warnings2) || (err == nil) != (err2 == nil) {
			t.Fatalf("Convert is not deterministic:\n%s\n---- then ----\n%s\n(%v, then %v)", out, out2, err, err2)
		}
		for i := range warnings {
			if warnings[i] != warnings2[i] {
				t.Fatalf("warning %d: %v, then %v", i, warnings[i], warnings2[i])
			}
			if warnings[i].Doc == "" || warnings[i].Message == "" {
				t.Fatalf("warning without a document or a message: %+v", warnings[i])
			}
		}
		if err != nil {
			if out != nil {
				t.Fatalf("output beside the error %v", err)
			}
			return
		}

		// The input as parsed, aliases expanded, bounds the output: a
		// converted object is the input's fields in Serin's shape plus
		// a few defaults.
		parsed := 0
		for _, doc := range splitDocuments(string(in)) {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatalf("Convert accepted a document that does not parse: %v", err)
			}
			j, _ := json.Marshal(obj)
			parsed += len(doc) + len(j)
		}
		if limit := 16*parsed + 4096; len(out) > limit {
			t.Fatalf("%d bytes in (%d parsed), %d out", len(in), parsed, len(out))
		}

		for i, doc := range splitDocuments(string(out)) {
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj == nil {
				t.Fatalf("output document %d is not a YAML object (%v):\n%s", i+1, err, doc)
			}
		}
		again, _, err := Convert(out)
		if err != nil {
			t.Fatalf("converting the output again: %v\n%s", err, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("converting the output again changed it:\n%s\n---- became ----\n%s", out, again)
		}
	})
}
