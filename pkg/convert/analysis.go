package convert

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// argoMetric is what a Canary needs from a metric of an AnalysisTemplate.
type argoMetric struct {
	name string
	// template is the MetricTemplate converted from the metric; empty when
	// its provider has no Serin conversion.
	template string
	rng      *serinv1.CanaryThresholdRange
	success  string // CEL, when the condition is no plain range
	failure  string // CEL
	interval time.Duration
	count    int64
	// failureLimit is Argo's number of failed measurements tolerated.
	failureLimit int64
	// consecutiveErrorLimit is Argo's number of errors in a row tolerated;
	// Serin's field of the same name also counts no-data results.
	consecutiveErrorLimit *int
}

// argoTemplate is an AnalysisTemplate read for conversion.
type argoTemplate struct {
	metrics []argoMetric
	// argNames are the template's arguments, in order.
	argNames []string
	// args are the template's argument defaults.
	args map[string]string
	// templates are the MetricTemplates of the prometheus metrics.
	templates []*serinv1.MetricTemplate
}

// AnalysisTemplate converts an Argo Rollouts AnalysisTemplate (or
// ClusterAnalysisTemplate) into one MetricTemplate per prometheus metric,
// named after the template, or <template>-<metric> when it has several
// metrics. A metric's interval, count, failureLimit and conditions belong
// to a Serin Canary, not to a MetricTemplate: Rollout reads them from the
// template.
// The error reports metadata that does not decode.
func AnalysisTemplate(obj map[string]any) ([]*serinv1.MetricTemplate, []Warning, error) {
	t := newTracker(obj)
	tmpl, err := readAnalysisTemplate(t)
	return tmpl.templates, t.finish(), err
}

var (
	argsRef      = regexp.MustCompile(`\{\{\s*args\.([^\s}]+)\s*\}\}`)
	templateRef  = regexp.MustCompile(`\{\{[^}]*\}\}`)
	identifier   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	inclusiveCmp = regexp.MustCompile(`^result (>=|<=) (-?[0-9.]+(?:[eE][-+]?[0-9]+)?)$`)
)

func readAnalysisTemplate(t *tracker) (argoTemplate, error) {
	root := t.root()
	root.get("apiVersion").use()
	root.get("kind").use()
	meta := &metav1.ObjectMeta{}
	if err := fromMap(copyMeta(t), meta); err != nil {
		return argoTemplate{}, fmt.Errorf("metadata: %w", err)
	}
	markKnown(root.get("metadata"), reflect.TypeFor[metav1.ObjectMeta]())
	if obj := t.obj; obj["kind"] == "ClusterAnalysisTemplate" {
		t.warn("kind", "Serin has no cluster-scoped MetricTemplate: apply the MetricTemplates in the Canaries' namespace, or in one namespace that their templateRef names")
	}
	spec := root.get("spec")
	out := argoTemplate{args: map[string]string{}}

	for _, a := range spec.get("args").list() {
		name, _ := a.get("name").str()
		out.argNames = append(out.argNames, name)
		if v, ok := a.get("value").str(); ok {
			out.args[name] = v
		}
		if vf := a.get("valueFrom"); vf.exists() {
			vf.warn("not supported: put credentials in the MetricTemplate's secretRef and other values in the Canary's templateVariables")
		}
	}

	metrics := spec.get("metrics").list()
	for _, m := range metrics {
		name, _ := m.get("name").str()
		am := argoMetric{name: name}
		if d, ok := argoDuration(m.get("interval")); ok {
			am.interval = d
		}
		am.count, _ = m.get("count").integer()
		am.failureLimit, _ = m.get("failureLimit").integer()
		if c := m.get("successCondition"); c.exists() {
			s, _ := c.str()
			am.rng, am.success = condition(c, s)
		}
		if c := m.get("failureCondition"); c.exists() {
			s, _ := c.str()
			if cel, ok := celCondition(s); ok {
				am.failure = cel
			} else {
				c.warn("%q cannot be converted to a CEL condition on result; write the Canary metric's failureCondition by hand", s)
			}
		}
		if l, ok := m.get("consecutiveErrorLimit").integer(); ok && l > 0 {
			n := int(min(l, 100))
			am.consecutiveErrorLimit = &n
		}

		provider := m.get("provider")
		for _, k := range provider.keys() {
			if k != "prometheus" {
				provider.get(k).warn("only prometheus metrics are converted")
			}
		}
		if prom := provider.get("prometheus"); prom.exists() {
			mtName := meta.Name
			if len(metrics) > 1 {
				mtName = meta.Name + "-" + name
			}
			am.template = mtName
			mt := &serinv1.MetricTemplate{
				TypeMeta:   metav1.TypeMeta{APIVersion: serinv1.GroupVersion.String(), Kind: serinv1.MetricTemplateKind},
				ObjectMeta: metav1.ObjectMeta{Name: mtName, Namespace: meta.Namespace, Labels: meta.Labels, Annotations: meta.Annotations},
				Spec:       serinv1.MetricTemplateSpec{Provider: serinv1.MetricTemplateProvider{Type: "prometheus"}},
			}
			readPrometheus(prom, mt)
			out.templates = append(out.templates, mt)
		}
		out.metrics = append(out.metrics, am)
	}
	return out, nil
}

func readPrometheus(prom node, mt *serinv1.MetricTemplate) {
	p := &mt.Spec.Provider
	p.Address, _ = prom.get("address").str()
	if s, ok := argoDuration(prom.get("timeout")); ok {
		p.Timeout = formatDuration(s)
	}
	p.InsecureSkipVerify, _ = prom.get("insecure").boolean()
	for _, h := range prom.get("headers").list() {
		k, ok1 := h.get("key").str()
		v, ok2 := h.get("value").str()
		if ok1 && ok2 {
			if p.Headers == nil {
				p.Headers = map[string][]string{}
			}
			p.Headers[k] = append(p.Headers[k], v)
		}
	}
	if a := prom.get("authentication"); a.exists() {
		a.warn("not supported: Serin authenticates with a username/password or token Secret in spec.provider.secretRef")
	}
	q := prom.get("query")
	query, _ := q.str()
	for _, ref := range templateRef.FindAllString(query, -1) {
		if !argsRef.MatchString(ref) {
			q.warn("%s is not an Argo argument reference; left as is, Serin reads it as a Go template", ref)
		}
	}
	// Arguments become Canary templateVariables. index works for every key,
	// the dotted form only for Go identifiers.
	mt.Spec.Query = argsRef.ReplaceAllStringFunc(query, func(ref string) string {
		key := argsRef.FindStringSubmatch(ref)[1]
		if identifier.MatchString(key) {
			return "{{ variables." + key + " }}"
		}
		return "{{ index variables " + strconv.Quote(key) + " }}"
	})
}

// condition converts an Argo successCondition: an inclusive bound (or two
// joined by &&) becomes a thresholdRange, another comparison a CEL
// successCondition; anything else is warned about.
func condition(n node, s string) (*serinv1.CanaryThresholdRange, string) {
	cel, ok := celCondition(s)
	if !ok {
		n.warn("%q cannot be converted: only comparisons of result (or result[0]) with numbers are; write the Canary metric's successCondition by hand", s)
		return nil, ""
	}
	rng := &serinv1.CanaryThresholdRange{}
	for _, part := range strings.Split(cel, " && ") {
		m := inclusiveCmp.FindStringSubmatch(part)
		if m == nil {
			return nil, cel
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, cel
		}
		if m[1] == ">=" && rng.Min == nil {
			rng.Min = &v
		} else if m[1] == "<=" && rng.Max == nil {
			rng.Max = &v
		} else {
			return nil, cel
		}
	}
	return rng, ""
}

var conditionToken = regexp.MustCompile(`^\s*(result\s*\[\s*0\s*\]|result|-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|>=|<=|==|!=|>|<|&&|\|\||\band\b|\bor\b|\(|\))`)

// celCondition rewrites an Argo (expr) condition made only of result,
// result[0], numbers, comparisons, and/or and parentheses into CEL on
// Serin's scalar result; reports false for anything else.
func celCondition(s string) (string, bool) {
	var out []string
	rest := s
	for strings.TrimSpace(rest) != "" {
		m := conditionToken.FindStringSubmatch(rest)
		if m == nil {
			return "", false
		}
		tok := m[1]
		switch {
		case strings.HasPrefix(tok, "result"):
			tok = "result"
		case tok == "and":
			tok = "&&"
		case tok == "or":
			tok = "||"
		case strings.Trim(tok, "-0123456789") == "":
			tok += ".0" // result is a double, and CEL's == has no int overload
		}
		out = append(out, tok)
		rest = rest[len(m[0]):]
	}
	if len(out) == 0 {
		return "", false
	}
	expr := strings.Join(out, " ")
	expr = strings.ReplaceAll(strings.ReplaceAll(expr, "( ", "("), " )", ")")
	// The tokens alone do not make a valid expression ("result >=").
	ast, iss := celEnv.Compile(expr)
	if iss.Err() != nil || ast.OutputType() != cel.BoolType {
		return "", false
	}
	return expr, true
}

// celEnv declares result as Serin's metric judge does.
var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(cel.Variable("result", cel.DoubleType), cel.CrossTypeNumericComparisons(true))
	if err != nil {
		panic(err)
	}
	return env
}()

// argoDuration reads an Argo duration: an integer number of seconds, or a
// string with an s, m or h unit (a bare number is seconds).
func argoDuration(n node) (time.Duration, bool) {
	switch v := n.v.(type) {
	case float64:
		s, ok := n.integer()
		if ok && s <= 0 {
			n.warn("%d is not a positive duration; ignored", s)
			return 0, false
		}
		return time.Duration(s) * time.Second, ok
	case string:
		str := v
		if _, err := strconv.Atoi(str); err == nil {
			str += "s"
		}
		d, err := time.ParseDuration(str)
		if err != nil || d <= 0 {
			n.warn("%q is not a positive duration; ignored", v)
			return 0, false
		}
		n.use()
		return d, true
	case nil:
		return 0, false
	default:
		n.warn("expected a duration; ignored")
		return 0, false
	}
}

// formatDuration writes d in the form Serin's duration fields accept,
// using the largest whole unit.
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
