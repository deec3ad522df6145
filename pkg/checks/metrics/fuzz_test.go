package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"text/template/parse"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/checks/metrics"
	"github.com/serin-dev/serin/pkg/checks/metrics/providers"
)

// documented are the functions of a query template (Vars).
var documented = map[string]bool{
	"name": true, "namespace": true, "target": true, "service": true,
	"ingress": true, "route": true, "interval": true, "variables": true,
}

// boundedBuiltins are text/template's built-in functions whose output is
// at most as long as one of their arguments.
var boundedBuiltins = map[string]bool{
	"and": true, "or": true, "not": true, "eq": true, "ne": true, "lt": true,
	"le": true, "gt": true, "ge": true, "len": true, "index": true, "slice": true,
}

func fuzzVars(value string) metrics.Vars {
	return metrics.Vars{
		Name: "podinfo", Namespace: "apps", Target: "podinfo", Service: "podinfo-svc",
		Ingress: "podinfo-ing", Route: "podinfo-svc", Interval: "1m",
		Variables: map[string]string{"cluster": value, "region": "eu-1"},
	}
}

// parseQuery parses a query as Render does, with the same function names.
func parseQuery(query string) (map[string]*parse.Tree, error) {
	funcs := map[string]any{}
	for name := range documented {
		funcs[name] = true
	}
	builtins := map[string]any{}
	for _, name := range []string{"and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice",
		"call", "html", "js", "print", "printf", "println", "urlquery"} {
		builtins[name] = true
	}
	return parse.Parse("query", query, "", "", funcs, builtins)
}

// shape classifies a parsed query.
type shape struct {
	// plain: only text and actions of one documented function or
	// variables.<key>, which reference() can render.
	plain bool
	// bounded: no loops, no nested templates, no function whose output
	// can outgrow its arguments (print, printf, js, html, urlquery, call).
	bounded bool
	actions int
}

func classify(trees map[string]*parse.Tree) shape {
	s := shape{plain: true, bounded: true}
	if len(trees) != 1 {
		// {{ define }} or {{ block }}: templates calling templates.
		s.plain, s.bounded = false, false
	}
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case nil:
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.TextNode, *parse.CommentNode:
		case *parse.ActionNode:
			s.actions++
			if _, ok := plainAction(n); !ok {
				s.plain = false
			}
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.IdentifierNode:
			if !documented[n.Ident] && !boundedBuiltins[n.Ident] {
				s.bounded = false
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.IfNode:
			s.plain = false
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			s.plain = false
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.FieldNode, *parse.StringNode, *parse.NumberNode, *parse.BoolNode,
			*parse.NilNode, *parse.DotNode, *parse.VariableNode:
			s.plain = false
		default:
			// range, template, break, continue and whatever comes next.
			s.plain, s.bounded = false, false
		}
	}
	for _, t := range trees {
		walk(t.Root)
	}
	return s
}

// plainAction returns the function name, or "variables.<key>", of an
// action that is nothing else.
func plainAction(a *parse.ActionNode) (string, bool) {
	if len(a.Pipe.Decl) > 0 || len(a.Pipe.Cmds) != 1 || len(a.Pipe.Cmds[0].Args) != 1 {
		return "", false
	}
	switch n := a.Pipe.Cmds[0].Args[0].(type) {
	case *parse.IdentifierNode:
		if documented[n.Ident] && n.Ident != "variables" {
			return n.Ident, true
		}
	case *parse.ChainNode:
		if id, ok := n.Node.(*parse.IdentifierNode); ok && id.Ident == "variables" && len(n.Field) == 1 {
			return "variables." + n.Field[0], true
		}
	}
	return "", false
}

// reference renders a plain query the way the documentation says: text
// as is, each function by its value, each variable by its value verbatim,
// a missing variable an error.
func reference(tree *parse.Tree, v metrics.Vars) (string, error) {
	values := map[string]string{
		"name": v.Name, "namespace": v.Namespace, "target": v.Target, "service": v.Service,
		"ingress": v.Ingress, "route": v.Route, "interval": v.Interval,
	}
	var out strings.Builder
	for _, n := range tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			out.Write(n.Text)
		case *parse.CommentNode:
		case *parse.ActionNode:
			what, _ := plainAction(n)
			if key, ok := strings.CutPrefix(what, "variables."); ok {
				value, ok := v.Variables[key]
				if !ok {
					return "", fmt.Errorf("missing variable %s", key)
				}
				out.WriteString(value)
				continue
			}
			out.WriteString(values[what])
		}
	}
	return out.String(), nil
}

// FuzzRender renders arbitrary query templates with an arbitrary template
// variable. Render must not panic; it must fail on what text/template
// cannot parse; a query made only of the documented functions and
// variables renders exactly as documented (values pasted verbatim, never
// executed as templates themselves, a missing variable an error); and a
// query without loops, nested templates or growing functions renders to a
// size bounded by its parts.
//
// Loops, nested templates and growing functions are refused: before they
// were, `{{range 50000000}}x{{end}}` rendered 50 MB in ~6s, a larger count
// held the reconcile worker and exhausted memory, and each
// `{{printf "%01000000d" 0}}` added 1 MB (a query is written by whoever may
// create a Canary or a MetricTemplate).
func FuzzRender(f *testing.F) {
	for _, seed := range []struct{ query, value string }{
		{`sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}"}[{{ interval }}]))`, "eu-1"},
		{`x{cluster="{{ variables.cluster }}",region="{{ variables.region }}"}`, `eu-1`},
		{`x{cluster="{{ variables.cluster }}"}`, `{{ name }}`},
		{`x{cluster="{{ variables.cluster }}"}`, `"} or vector(1) or x{a="`},
		{`x{c="{{ variables.zone }}"}`, "a"},
		{`{{ if eq (variables.cluster) "eu-1" }}eu{{ else }}{{ variables.cluster }}{{ end }}`, "eu-1"},
		{`{{ with variables.region }}{{ . }}{{ end }}{{ len variables.cluster }}{{ index variables "cluster" }}`, "x"},
		{`{{ slice variables.cluster 1 }}{{ variables }}`, "abcdef"},
		{`{{/* a comment */}}{{- service -}} {{ ingress }} {{ route }} {{ name }}`, ""},
		{`{{ pod }}`, ""},
		{`{{ variables.cluster`, ""},
		{`{{ .Values }}`, ""},
		{`{{range 3}}x{{end}}`, ""},
		{`{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`, ""},
		{`{{ printf "%05d" 1 }}`, ""},
	} {
		f.Add(seed.query, seed.value)
	}
	f.Fuzz(func(t *testing.T, query, value string) {
		if len(query) > 4096 || len(value) > 1024 {
			t.Skip("larger than a query or a variable in practice")
		}
		vars := fuzzVars(value)
		trees, perr := parseQuery(query)
		if perr != nil {
			if _, err := metrics.Render(query, vars); err == nil {
				t.Fatalf("Render accepted %q, which does not parse: %v", query, perr)
			}
			return
		}
		s := classify(trees)
		if !s.bounded {
			if _, err := metrics.Render(query, vars); err == nil {
				t.Fatalf("Render accepted %q, which loops, nests templates or calls a growing function", query)
			}
			return
		}
		got, err := metrics.Render(query, vars)
		again, err2 := metrics.Render(query, vars)
		if got != again || (err == nil) != (err2 == nil) {
			t.Fatalf("Render is not deterministic on %q: %q (%v), then %q (%v)", query, got, err, again, err2)
		}
		if s.plain {
			want, werr := reference(trees["query"], vars)
			if (err == nil) != (werr == nil) {
				t.Fatalf("Render(%q) error %v, the documented rendering's %v", query, err, werr)
			}
			if err == nil && got != want {
				t.Fatalf("Render(%q) with cluster=%q\n got %q\nwant %q", query, value, got, want)
			}
			return
		}
		if err != nil {
			return
		}
		// Each action prints one value: a variable, the map of all, a
		// string of the query, a number or a bool.
		largest := len(fmt.Sprint(vars.Variables)) + len(query) + 64
		if limit := len(query) + s.actions*largest; len(got) > limit {
			t.Fatalf("Render(%q) is %d bytes, more than %d", query, len(got), limit)
		}
	})
}

// recorder is a metrics backend that keeps the queries it is sent.
type recorder struct{ queries []string }

func (r *recorder) Query(_ context.Context, query string, _ time.Duration) (float64, error) {
	r.queries = append(r.queries, query)
	return 1, nil
}

// promLiterals splits a PromQL query into its string literals and the
// rest, as PromQL's lexer reads them: "..." and '...' with backslash
// escapes, `...` raw. ok is false when a literal is not closed.
func promLiterals(q string) (literals []string, rest string, ok bool) {
	var out strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c != '"' && c != '\'' && c != '`' {
			out.WriteByte(c)
			continue
		}
		var lit strings.Builder
		closed := false
		for i++; i < len(q); i++ {
			if q[i] == '\\' && c != '`' && i+1 < len(q) {
				lit.WriteByte(q[i])
				i++
				lit.WriteByte(q[i])
				continue
			}
			if q[i] == c {
				closed = true
				break
			}
			lit.WriteByte(q[i])
		}
		if !closed {
			return literals, out.String(), false
		}
		literals = append(literals, lit.String())
		out.WriteString("<lit>")
	}
	return literals, out.String(), true
}

// FuzzMeasureVariablesStayQuoted measures a Canary whose inline query
// places two template variables in PromQL strings of both quote styles.
// Whatever the variables hold, the query sent to the backend has exactly
// the string literals of the template, each holding its variable verbatim,
// and the same PromQL around them; or the metric is refused as a
// configuration error and nothing is sent.
func FuzzMeasureVariablesStayQuoted(f *testing.F) {
	const query = `sum(rate(http_requests_total{namespace="{{ namespace }}",cluster="{{ variables.cluster }}",job='{{ variables.job }}'}[{{ interval }}]))`
	for _, seed := range [][2]string{
		{"eu-1", "web"},
		{`eu-1"} or vector(1) or x{a="`, "web"},
		{"eu-1", `web'} or on() vector(0) #`},
		{`a\`, `b`},
		{"line\nbreak", "{{ name }}"},
		{"`raw`", "}{"},
		{"ünïcode ✓", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, cluster, job string) {
		rec := &recorder{}
		checker := &metrics.Checker{
			DefaultAddress: "http://prometheus.invalid:9090",
			NewProvider:    func(providers.Config) (providers.Provider, error) { return rec, nil },
		}
		canary := &serinv1.Canary{
			ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "podinfo"},
			Spec: serinv1.CanarySpec{
				TargetRef: serinv1.TargetReference{Kind: "Deployment", Name: "podinfo"},
				Analysis: serinv1.CanaryAnalysis{Metrics: []serinv1.CanaryMetric{{
					Name: "rate", Interval: "1m", Query: query,
					TemplateVariables: map[string]string{"cluster": cluster, "job": job},
				}}},
			},
		}
		_, err := checker.Measure(context.Background(), canary, serinv1.ProviderKubernetes)
		if err != nil {
			var cfgErr *metrics.ConfigError
			if !errors.As(err, &cfgErr) {
				t.Fatalf("Measure: %v, not a ConfigError", err)
			}
			if len(rec.queries) != 0 {
				t.Fatalf("a refused metric was sent: %q", rec.queries)
			}
			return
		}
		if len(rec.queries) != 1 {
			t.Fatalf("sent %d queries, want 1", len(rec.queries))
		}
		sent := rec.queries[0]
		literals, rest, ok := promLiterals(sent)
		const wantRest = "sum(rate(http_requests_total{namespace=<lit>,cluster=<lit>,job=<lit>}[1m]))"
		if !ok || rest != wantRest || len(literals) != 3 {
			t.Fatalf("the variables (cluster=%q, job=%q) changed the query:\n sent %q\n PromQL outside strings %q, want %q", cluster, job, sent, rest, wantRest)
		}
		if want := []string{"apps", cluster, job}; literals[0] != want[0] || literals[1] != want[1] || literals[2] != want[2] {
			t.Fatalf("string literals %q, want %q", literals, want)
		}
	})
}
