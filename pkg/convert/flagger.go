package convert

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// The enum values of the Serin CRDs (artifacts/crds) that Flagger's API
// allows more of. The tests check them against the CRDs.
var (
	serinProviders       = providerNames()
	serinTargetKinds     = []string{"Deployment", "DaemonSet", "ConfigMap"}
	serinAlertTypes      = []string{"slack", "msteams", "discord", "rocket", "gchat", "generic", "cloudevents"}
	serinMetricProviders = []string{"prometheus", "datadog", "cloudwatch", "newrelic", "graphite", "influxdb", "dynatrace"}
	serinHookTypes       = []string{"pre-rollout", "rollout", "confirm-rollout", "post-rollout", "confirm-promotion", "rollback", "confirm-traffic-increase", "event"}
	serinSeverities      = []string{"info", "warn", "error"}
)

// providerNames are serinv1.Providers as strings, for checkEnum.
func providerNames() []string {
	var names []string
	for _, p := range serinv1.Providers() {
		names = append(names, string(p))
	}
	return names
}

// Older API versions Flagger accepted for references that Serin pins to one
// version; the referenced objects are the same.
var refAPIVersions = map[string]string{
	"autoscaling/v2beta1":       "autoscaling/v2",
	"autoscaling/v2beta2":       "autoscaling/v2",
	"extensions/v1beta1":        "networking.k8s.io/v1",
	"networking.k8s.io/v1beta1": "networking.k8s.io/v1",
}

// FlaggerCanary converts a flagger.app/v1beta1 Canary. Serin's Canary has
// Flagger's field names, so the fields Serin knows are kept as they are;
// Flagger's deprecated spec.canaryAnalysis becomes spec.analysis. Fields
// Serin does not have, and values it does not accept, are warned about.
// The error reports a field of the wrong type.
func FlaggerCanary(obj map[string]any) (*serinv1.Canary, []Warning, error) {
	t := newTracker(obj)
	c, err := flaggerCanary(t)
	return c, t.finish(), err
}

func flaggerCanary(t *tracker) (*serinv1.Canary, error) {
	obj := t.obj
	spec, _ := obj["spec"].(map[string]any)
	in := map[string]any{"metadata": copyMeta(t), "spec": spec}
	if ca, ok := spec["canaryAnalysis"]; ok {
		if _, both := spec["analysis"]; both {
			t.warn("spec.canaryAnalysis", "deprecated Flagger field; ignored because spec.analysis is set")
		} else {
			s := make(map[string]any, len(spec))
			for k, v := range spec {
				s[k] = v
			}
			s["analysis"] = ca
			delete(s, "canaryAnalysis")
			in["spec"] = s
			markKnown(t.root().get("spec").get("canaryAnalysis"), reflect.TypeFor[serinv1.CanaryAnalysis]())
		}
	}
	c := &serinv1.Canary{}
	if err := decodeTyped(t, in, c); err != nil {
		return nil, err
	}
	c.APIVersion = serinv1.GroupVersion.String()
	c.Kind = serinv1.CanaryKind

	analysisKey := "analysis"
	if _, ok := spec["analysis"]; !ok && spec["canaryAnalysis"] != nil {
		analysisKey = "canaryAnalysis"
	}
	analysisPath := "spec." + analysisKey
	for i, m := range t.root().get("spec").get(analysisKey).get("metrics").list() {
		th := m.get("threshold")
		if !th.exists() || i >= len(c.Spec.Analysis.Metrics) {
			continue
		}
		switch cm := c.Spec.Analysis.Metrics[i]; {
		case cm.Name != serinv1.MetricRequestSuccessRate && cm.Name != serinv1.MetricRequestDuration:
			th.warn("deprecated Flagger field that Flagger ignores on a custom metric, and Serin refuses: set thresholdRange")
		case cm.ThresholdRange != nil:
			th.warn("deprecated Flagger field; thresholdRange is set and takes its place")
		}
	}
	checkEnum(t, "spec.provider", string(c.Spec.Provider), serinProviders, "a router")
	fixRefAPIVersion(t, "spec.targetRef.apiVersion", &c.Spec.TargetRef.APIVersion, "apps/v1")
	checkEnum(t, "spec.targetRef.kind", c.Spec.TargetRef.Kind, serinTargetKinds, "a target kind")
	if r := c.Spec.AutoscalerRef; r != nil {
		fixRefAPIVersion(t, "spec.autoscalerRef.apiVersion", &r.APIVersion, "autoscaling/v2")
		checkEnum(t, "spec.autoscalerRef.kind", r.Kind, []string{"HorizontalPodAutoscaler"}, "an autoscaler kind")
	}
	if r := c.Spec.IngressRef; r != nil {
		fixRefAPIVersion(t, "spec.ingressRef.apiVersion", &r.APIVersion, "networking.k8s.io/v1")
		checkEnum(t, "spec.ingressRef.kind", r.Kind, []string{"Ingress"}, "an ingress kind")
	}
	for i, w := range c.Spec.Analysis.Webhooks {
		checkEnum(t, fmt.Sprintf("%s.webhooks[%d].type", analysisPath, i), string(w.Type), serinHookTypes, "a webhook type")
	}
	for i, a := range c.Spec.Analysis.Alerts {
		checkEnum(t, fmt.Sprintf("%s.alerts[%d].severity", analysisPath, i), string(a.Severity), serinSeverities, "an alert severity")
	}
	return c, nil
}

// FlaggerMetricTemplate converts a flagger.app/v1beta1 MetricTemplate,
// warning about providers Serin does not have.
func FlaggerMetricTemplate(obj map[string]any) (*serinv1.MetricTemplate, []Warning, error) {
	t := newTracker(obj)
	m, err := flaggerMetricTemplate(t)
	return m, t.finish(), err
}

func flaggerMetricTemplate(t *tracker) (*serinv1.MetricTemplate, error) {
	m := &serinv1.MetricTemplate{}
	if err := decodeTyped(t, map[string]any{"metadata": copyMeta(t), "spec": t.obj["spec"]}, m); err != nil {
		return nil, err
	}
	m.APIVersion = serinv1.GroupVersion.String()
	m.Kind = serinv1.MetricTemplateKind
	checkEnum(t, "spec.provider.type", string(m.Spec.Provider.Type), serinMetricProviders, "a metric provider")
	return m, nil
}

// FlaggerAlertProvider converts a flagger.app/v1beta1 AlertProvider,
// warning about types Serin does not have.
func FlaggerAlertProvider(obj map[string]any) (*serinv1.AlertProvider, []Warning, error) {
	t := newTracker(obj)
	p, err := flaggerAlertProvider(t)
	return p, t.finish(), err
}

func flaggerAlertProvider(t *tracker) (*serinv1.AlertProvider, error) {
	p := &serinv1.AlertProvider{}
	if err := decodeTyped(t, map[string]any{"metadata": copyMeta(t), "spec": t.obj["spec"]}, p); err != nil {
		return nil, err
	}
	p.APIVersion = serinv1.GroupVersion.String()
	p.Kind = serinv1.AlertProviderKind
	checkEnum(t, "spec.type", p.Spec.Type, serinAlertTypes, "an alert provider type")
	return p, nil
}

// decodeTyped decodes in into out and marks as used the input fields out's
// type has (apiVersion and kind are replaced by the caller).
func decodeTyped(t *tracker, in map[string]any, out any) error {
	if err := fromMap(in, out); err != nil {
		return err
	}
	root := t.root()
	root.get("apiVersion").use()
	root.get("kind").use()
	typ := reflect.TypeOf(out).Elem()
	for _, k := range []string{"metadata", "spec"} {
		if f, ok := jsonFields(typ)[k]; ok {
			markKnown(root.get(k), f)
		}
	}
	return nil
}

// checkEnum warns when a set value is not one Serin accepts. The value is
// kept: the API server then rejects the object, rather than Serin running
// it with another meaning.
func checkEnum(t *tracker, path, value string, allowed []string, what string) {
	if value == "" || slices.Contains(allowed, value) {
		return
	}
	t.warn(path, "%q is not %s Serin supports (%s); kept, so the object is rejected until it is changed", value, what, strings.Join(allowed, ", "))
}

// fixRefAPIVersion rewrites an older apiVersion of a reference to the one
// Serin accepts.
func fixRefAPIVersion(t *tracker, path string, v *string, want string) {
	if *v == "" || *v == want {
		return
	}
	if refAPIVersions[*v] == want {
		t.warn(path, "%s replaced by %s, the version Serin reads", *v, want)
		*v = want
		return
	}
	checkEnum(t, path, *v, []string{want}, "an apiVersion")
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// markKnown marks as used the fields of n that typ has, following JSON
// field names. Maps, scalars and types with their own JSON decoding (free
// form JSON, IntOrString, Time) are used whole.
func markKnown(n node, typ reflect.Type) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case reflect.PointerTo(typ).Implements(unmarshalerType):
		n.use()
	case typ.Kind() == reflect.Struct:
		m, ok := n.v.(map[string]any)
		if !ok {
			n.use()
			return
		}
		fields := jsonFields(typ)
		for k := range m {
			if f, ok := fields[k]; ok {
				markKnown(n.get(k), f)
			}
		}
		if len(m) == 0 {
			n.use()
		}
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() != reflect.Uint8:
		l, ok := n.v.([]any)
		if !ok || len(l) == 0 {
			n.use()
			return
		}
		for i := range l {
			markKnown(n.at(i), typ.Elem())
		}
	default:
		n.use()
	}
}

// jsonFields maps the JSON names of a struct's fields, with those of
// inlined structs, to their types.
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}
