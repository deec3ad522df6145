// Package metrics runs a Canary's metric checks: it renders built-in queries
// and MetricTemplates, asks the metrics backend (pkg/checks/metrics/providers)
// and judges the value against thresholdRange and CEL conditions.
package metrics

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// Vars are the values a query template can use, with Flagger's names:
// {{ name }}, {{ namespace }}, {{ target }}, {{ service }}, {{ ingress }},
// {{ route }}, {{ interval }} and {{ variables.<key> }}; and for a flag
// rollout {{ flag }}, {{ newVariant }} and {{ oldVariant }}: the changed
// flag's key and the variants its new and promoted definitions serve by
// default, as OpenFeature's telemetry labels evaluations
// (feature_flag.key, feature_flag.variant). With several changed flags
// each is the values joined by "|", in the same order, for a =~ matcher.
type Vars struct {
	Name      string
	Namespace string
	Target    string
	Service   string
	Ingress   string
	Route     string
	Interval  string
	Variables map[string]string
	Flags     []serinv1.FlagChange
}

// flagValues joins one field of the changed flags for {{ name }}. The
// names come from the flag definitions, so they are refused where they
// could rewrite the query, as template variables are.
func (v Vars) flagValues(name string, field func(serinv1.FlagChange) string) (string, error) {
	if len(v.Flags) == 0 {
		return "", fmt.Errorf("{{ %s }} needs a flag rollout with a changed flag (a ConfigMap target whose revision is not the promoted one)", name)
	}
	values := make([]string, len(v.Flags))
	for i, f := range v.Flags {
		values[i] = field(f)
		if j := strings.IndexAny(values[i], unsafeInVariables); j >= 0 {
			return "", fmt.Errorf("{{ %s }}: flag %q: %q may not contain quotes, backslashes, braces or line breaks, which could change the query", name, f.Key, values[i][j:j+1])
		}
	}
	return strings.Join(values, "|"), nil
}

// Render executes a query template. A missing variable is an error, so a
// typo never reaches the backend as an empty label matcher.
func Render(query string, v Vars) (string, error) {
	variables := v.Variables
	if variables == nil {
		variables = map[string]string{}
	}
	funcs := template.FuncMap{
		"name":      func() string { return v.Name },
		"namespace": func() string { return v.Namespace },
		"target":    func() string { return v.Target },
		"service":   func() string { return v.Service },
		"ingress":   func() string { return v.Ingress },
		"route":     func() string { return v.Route },
		"interval":  func() string { return v.Interval },
		"variables": func() map[string]string { return variables },
		"flag": func() (string, error) {
			return v.flagValues("flag", func(f serinv1.FlagChange) string { return f.Key })
		},
		"newVariant": func() (string, error) {
			return v.flagValues("newVariant", func(f serinv1.FlagChange) string { return f.NewVariant })
		},
		"oldVariant": func() (string, error) {
			return v.flagValues("oldVariant", func(f serinv1.FlagChange) string { return f.OldVariant })
		},
	}
	t, err := template.New("query").Funcs(funcs).Option("missingkey=error").Parse(query)
	if err != nil {
		return "", fmt.Errorf("parsing the query template: %w", err)
	}
	if err := checkBounded(t, funcs); err != nil {
		return "", fmt.Errorf("the query template %w", err)
	}
	out := cappedWriter{max: maxRenderedBytes}
	if err := t.Execute(&out, nil); err != nil {
		return "", fmt.Errorf("rendering the query template: %w", err)
	}
	return out.String(), nil
}

// maxRenderedBytes caps a rendered query; real ones are a few hundred bytes.
const maxRenderedBytes = 64 << 10

// boundedFuncs are the functions a query template may call besides Vars':
// text/template's built-ins whose result is no longer than an argument.
// print, printf and println are left out (a width pads without bound), and
// so are range, template and variables, which repeat or double their
// output: a query comes from whoever may write a Canary or MetricTemplate,
// and rendering it must not hold the controller.
var boundedFuncs = map[string]bool{
	"and": true, "or": true, "not": true, "eq": true, "ne": true, "lt": true,
	"le": true, "gt": true, "ge": true, "len": true, "index": true, "slice": true,
}

// checkBounded refuses the template constructs whose rendering time or size
// the query's length does not bound.
func checkBounded(t *template.Template, funcs template.FuncMap) error {
	if len(t.Templates()) > 1 {
		return errors.New("may not define templates ({{define}}, {{block}})")
	}
	var check func(n parse.Node) error
	check = func(n parse.Node) error {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := check(c); err != nil {
					return err
				}
			}
		case *parse.TextNode, *parse.CommentNode, *parse.FieldNode, *parse.StringNode,
			*parse.NumberNode, *parse.BoolNode, *parse.NilNode, *parse.DotNode:
		case *parse.ActionNode:
			return check(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return nil
			}
			if len(n.Decl) > 0 {
				return errors.New("may not declare or assign variables")
			}
			for _, c := range n.Cmds {
				if err := check(c); err != nil {
					return err
				}
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				if err := check(a); err != nil {
					return err
				}
			}
		case *parse.ChainNode:
			return check(n.Node)
		case *parse.VariableNode:
			// Only $, the data (nil); declared variables are refused above.
		case *parse.IdentifierNode:
			if _, ok := funcs[n.Ident]; !ok && !boundedFuncs[n.Ident] {
				return fmt.Errorf("may not call %s: only Flagger's query functions and and, or, not, eq, ne, lt, le, gt, ge, len, index and slice", n.Ident)
			}
		case *parse.IfNode:
			return checkBranch(check, &n.BranchNode)
		case *parse.WithNode:
			return checkBranch(check, &n.BranchNode)
		default:
			return fmt.Errorf("may not use %s: only text, actions, if and with render in bounded time", n)
		}
		return nil
	}
	return check(t.Tree.Root)
}

func checkBranch(check func(parse.Node) error, b *parse.BranchNode) error {
	for _, n := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if err := check(n); err != nil {
			return err
		}
	}
	return nil
}

// errTooLong stops a rendering that outgrows maxRenderedBytes.
var errTooLong = fmt.Errorf("renders to more than %d bytes", maxRenderedBytes)

// cappedWriter is a strings.Builder that refuses to grow past max.
type cappedWriter struct {
	strings.Builder
	max int
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > w.max {
		return 0, errTooLong
	}
	return w.Builder.Write(p)
}
