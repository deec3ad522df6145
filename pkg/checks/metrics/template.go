// Package metrics runs a Canary's metric checks: it renders built-in queries
// and MetricTemplates, asks the metrics backend (pkg/checks/metrics/providers)
// and judges the value against thresholdRange and CEL conditions.
package metrics

import (
	"fmt"
	"strings"
	"text/template"
)

// Vars are the values a query template can use, with Flagger's names:
// {{ name }}, {{ namespace }}, {{ target }}, {{ service }}, {{ ingress }},
// {{ route }}, {{ interval }} and {{ variables.<key> }}.
type Vars struct {
	Name      string
	Namespace string
	Target    string
	Service   string
	Ingress   string
	Route     string
	Interval  string
	Variables map[string]string
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
	}
	t, err := template.New("query").Funcs(funcs).Option("missingkey=error").Parse(query)
	if err != nil {
		return "", fmt.Errorf("parsing the query template: %w", err)
	}
	var out strings.Builder
	if err := t.Execute(&out, nil); err != nil {
		return "", fmt.Errorf("rendering the query template: %w", err)
	}
	return out.String(), nil
}
