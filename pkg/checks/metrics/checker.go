package metrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/checks/metrics/providers"
	"github.com/serin-dev/serin/pkg/refpolicy"
)

// DefaultInterval is the query window of a metric without an interval.
const DefaultInterval = time.Minute

// ConfigError says that a metric cannot run as written (a missing
// MetricTemplate, a forbidden cross-namespace reference, an invalid
// condition); retrying does not help until the user changes something.
type ConfigError struct {
	Metric string
	Err    error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("metric %s: %v", e.Metric, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// Measurement is what one query returned; the analysis judges it.
type Measurement struct {
	// Name of the metric check.
	Name  string
	Value float64
	// NoData: the backend answered without a usable value.
	NoData bool
	// Err: the query failed (backend unreachable, bad query, auth).
	Err error
}

// Checker queries the metrics of a Canary. It measures; it does not judge.
type Checker struct {
	// Reader reads MetricTemplates and the Secrets they name.
	Reader client.Reader
	// DefaultAddress is the Prometheus of built-in and inline queries when
	// the Canary has no metricsServer.
	DefaultAddress string
	// Refs says which namespaces a Canary may take templates from.
	Refs refpolicy.Policy
	// AWS is the controller's own AWS identity (IRSA, EKS Pod Identity, an
	// instance role), lent to cloudwatch MetricTemplates without a
	// secretRef; nil unless the operator enables it. Only templates of the
	// shared namespaces get it, which only the operator writes: a tenant
	// must not query CloudWatch as the controller.
	AWS aws.CredentialsProvider
	// NewProvider builds a backend client; providers.New unless a test
	// replaces it.
	NewProvider func(providers.Config) (providers.Provider, error)
}

// Measure queries every metric of the Canary once. provider is the
// Canary's effective traffic provider, which selects the built-in queries.
// A query that fails is part of its Measurement; only a metric that cannot
// run as written is an error (a ConfigError).
func (c *Checker) Measure(ctx context.Context, canary *serinv1.Canary, provider serinv1.Provider) ([]Measurement, error) {
	out := make([]Measurement, 0, len(canary.Spec.Analysis.Metrics))
	for _, m := range canary.Spec.Analysis.Metrics {
		meas, err := c.measure(ctx, canary, provider, m)
		if err != nil {
			return nil, &ConfigError{Metric: m.Name, Err: err}
		}
		meas.Name = m.Name
		out = append(out, meas)
	}
	return out, nil
}

// measure renders the metric's query and runs it. Query failures are part
// of the Measurement; only configuration problems are returned as errors.
func (c *Checker) measure(ctx context.Context, canary *serinv1.Canary, provider serinv1.Provider, m serinv1.CanaryMetric) (Measurement, error) {
	interval, window := queryWindow(m.Interval)
	query, cfg, err := c.queryAndBackend(ctx, canary, provider, m)
	var transient *transientError
	if errors.As(err, &transient) {
		return Measurement{Err: transient.err}, nil
	}
	if err != nil {
		return Measurement{}, err
	}
	if cfg.Type == "prometheus" && cfg.Address == "" {
		return Measurement{}, errors.New("no Prometheus address: set spec.metricsServer or the controller's --metrics-server")
	}
	return c.run(ctx, cfg, query, varsOf(canary, m, interval), window)
}

// queryWindow returns the metric's interval as the {{ interval }} of its
// query ("1m" when unset) and as the window the backend is asked for
// (DefaultInterval when unset or not a Go duration).
func queryWindow(interval string) (string, time.Duration) {
	window := DefaultInterval
	if interval == "" {
		interval = "1m"
	} else if d, err := time.ParseDuration(interval); err == nil {
		window = d
	}
	return interval, window
}

// queryAndBackend returns the metric's query template and the backend it
// goes to: its MetricTemplate's, or its inline query or the built-in one
// for provider on the Canary's Prometheus. A transientError says that the
// template or its Secret could not be read this time.
func (c *Checker) queryAndBackend(ctx context.Context, canary *serinv1.Canary, provider serinv1.Provider, m serinv1.CanaryMetric) (string, providers.Config, error) {
	cfg := c.canaryPrometheus(canary)
	switch {
	case m.TemplateRef != nil:
		return c.templateQuery(ctx, canary, m.TemplateRef, cfg)
	case m.Query != "":
		return m.Query, cfg, nil
	default:
		q, ok := BuiltinQuery(provider, m.Name)
		if !ok {
			return "", cfg, fmt.Errorf("%q is not a built-in metric; set templateRef or query", m.Name)
		}
		return q, cfg, nil
	}
}

// canaryPrometheus is the backend of built-in and inline queries: the
// Canary's metricsServer, or the controller's default.
func (c *Checker) canaryPrometheus(canary *serinv1.Canary) providers.Config {
	cfg := providers.Config{Type: "prometheus", Address: canary.Spec.MetricsServer}
	if cfg.Address == "" {
		cfg.Address = c.DefaultAddress
	}
	return cfg
}

// templateQuery reads the MetricTemplate ref names and returns its query and
// its provider's config, starting from the Canary's Prometheus (cfg), with
// the credentials of its Secret.
func (c *Checker) templateQuery(ctx context.Context, canary *serinv1.Canary, ref *serinv1.CrossNamespaceObjectReference, cfg providers.Config) (string, providers.Config, error) {
	tmpl, err := c.template(ctx, canary, ref)
	if err != nil {
		return "", cfg, err
	}
	p := tmpl.Spec.Provider
	cfg = templateProvider(p, cfg)
	if p.SecretRef != nil && p.Address == "" && cfg.Type == "prometheus" {
		// Without its own address the query would go to the
		// Canary's metricsServer, which the Canary's owner chooses:
		// the template's credentials only ever go to its own
		// address.
		return "", cfg, fmt.Errorf("MetricTemplate %s/%s has a secretRef but no provider.address: its credentials are only sent to its own address", tmpl.Namespace, tmpl.Name)
	}
	if p.SecretRef != nil {
		if cfg.Credentials, err = c.templateCredentials(ctx, tmpl); err != nil {
			return "", cfg, err
		}
	} else if cfg.Type == "cloudwatch" {
		if cfg.AWS, err = c.lendAWS(tmpl); err != nil {
			return "", cfg, err
		}
	}
	return tmpl.Spec.Query, cfg, nil
}

// lendAWS returns the controller's AWS identity for a cloudwatch template
// without a secretRef, or says why the template may not have it.
func (c *Checker) lendAWS(tmpl *serinv1.MetricTemplate) (aws.CredentialsProvider, error) {
	name := tmpl.Namespace + "/" + tmpl.Name
	switch {
	case c.AWS == nil:
		return nil, fmt.Errorf("MetricTemplate %s of type cloudwatch has no secretRef, and the controller lends its own AWS identity to none (--aws-default-credentials)", name)
	case !slices.Contains(c.Refs.Shared, tmpl.Namespace):
		return nil, fmt.Errorf("MetricTemplate %s of type cloudwatch has no secretRef: the controller's own AWS identity serves only templates of the shared namespaces (%s); give it a secretRef or move it", name, strings.Join(c.Refs.Shared, ", "))
	case tmpl.Spec.Provider.Address != "":
		return nil, fmt.Errorf("MetricTemplate %s of type cloudwatch has no secretRef and a provider.address: the controller's own AWS identity signs requests to CloudWatch's regional endpoint only", name)
	}
	return c.AWS, nil
}

// templateProvider applies a MetricTemplate's provider to cfg, the Canary's
// Prometheus: a template of another type, or with an address of its own,
// never queries the Canary's. An invalid timeout is ignored.
func templateProvider(p serinv1.MetricTemplateProvider, cfg providers.Config) providers.Config {
	cfg.Type = string(p.Type)
	if cfg.Type == "" {
		cfg.Type = "prometheus"
	}
	if p.Address != "" || cfg.Type != "prometheus" {
		cfg.Address = p.Address
	}
	cfg.Headers = p.Headers
	cfg.InsecureSkipVerify = p.InsecureSkipVerify
	cfg.Region = p.Region
	if p.Timeout != "" {
		if d, err := time.ParseDuration(p.Timeout); err == nil {
			cfg.Timeout = d
		}
	}
	return cfg
}

// templateCredentials reads the data of the Secret a MetricTemplate's
// provider names, in the template's namespace. A missing Secret is a
// configuration error, any other failure a transientError.
func (c *Checker) templateCredentials(ctx context.Context, tmpl *serinv1.MetricTemplate) (map[string][]byte, error) {
	name := tmpl.Spec.Provider.SecretRef.Name
	var secret corev1.Secret
	if err := c.Reader.Get(ctx, client.ObjectKey{Namespace: tmpl.Namespace, Name: name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("Secret %s/%s of MetricTemplate %s not found", tmpl.Namespace, name, tmpl.Name)
		}
		return nil, &transientError{fmt.Errorf("reading the Secret of MetricTemplate %s: %w", tmpl.Name, err)}
	}
	return secret.Data, nil
}

// run renders query with vars and asks the backend of cfg for its value
// over window. A query that fails or finds no data is a Measurement; only
// a query or a backend that cannot run as written is an error.
func (c *Checker) run(ctx context.Context, cfg providers.Config, query string, vars Vars, window time.Duration) (Measurement, error) {
	if err := checkVariables(vars.Variables); err != nil {
		return Measurement{}, err
	}
	rendered, err := Render(query, vars)
	if err != nil {
		return Measurement{}, err
	}
	backend, err := c.NewProvider(cfg)
	if err != nil {
		return Measurement{}, err
	}
	v, err := backend.Query(ctx, rendered, window)
	switch {
	case errors.Is(err, providers.ErrNoData):
		return Measurement{NoData: true}, nil
	case err != nil:
		return Measurement{Err: err}, nil
	}
	return Measurement{Value: v}, nil
}

func (c *Checker) template(ctx context.Context, canary *serinv1.Canary, ref *serinv1.CrossNamespaceObjectReference) (*serinv1.MetricTemplate, error) {
	ns := ref.Namespace
	if ns == "" {
		ns = canary.Namespace
	}
	if err := c.Refs.Allows(canary.Namespace, serinv1.MetricTemplateKind, ns, ref.Name); err != nil {
		return nil, err
	}
	var tmpl serinv1.MetricTemplate
	if err := c.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &tmpl); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("MetricTemplate %s/%s not found", ns, ref.Name)
		}
		return nil, &transientError{fmt.Errorf("reading MetricTemplate %s/%s: %w", ns, ref.Name, err)}
	}
	return &tmpl, nil
}

// transientError is an API failure that the next check may not see.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }

func varsOf(canary *serinv1.Canary, m serinv1.CanaryMetric, interval string) Vars {
	service := canary.Spec.Service.Name
	if service == "" {
		service = canary.Spec.TargetRef.Name
	}
	ingress := ""
	if canary.Spec.IngressRef != nil {
		ingress = canary.Spec.IngressRef.Name
	}
	return Vars{
		Name:      canary.Name,
		Namespace: canary.Namespace,
		Target:    canary.Spec.TargetRef.Name,
		Service:   service,
		Ingress:   ingress,
		Route:     service,
		Interval:  interval,
		Variables: m.TemplateVariables,
		Flags:     canary.Status.Flags,
	}
}

// unsafeInVariables are the characters that would let a template variable
// end the string it is placed in and add to the query (PromQL and the other
// providers' query languages quote with them).
const unsafeInVariables = "\"'`\\{}\n\r"

// checkVariables refuses template variables that could rewrite the query
// they are pasted into.
func checkVariables(vars map[string]string) error {
	for k, v := range vars {
		if i := strings.IndexAny(v, unsafeInVariables); i >= 0 {
			return fmt.Errorf("templateVariables.%s: %q may not contain quotes, backslashes, braces or line breaks, which could change the query", k, v[i:i+1])
		}
	}
	return nil
}
