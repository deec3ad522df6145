package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/flags"
	"github.com/serin-dev/serin/pkg/naming"

	"github.com/serin-dev/serin/e2e/telemetry"
)

// FlagErrorsTemplate is the MetricTemplate of flag rollouts: the 5xx share
// of the requests served with the changed flag's new default variant, by
// OpenFeature's labels. The numerator is 0 while no request failed; the
// ratio has no data while no request got the variant.
const FlagErrorsTemplate = "new-variant-errors"

const flagErrorsQuery = `100 * (sum(rate(http_server_request_duration_seconds_count{namespace="{{ namespace }}",feature_flag_key=~"{{ flag }}",feature_flag_variant=~"{{ newVariant }}",http_response_status_code="500"}[{{ interval }}])) or vector(0))
  / sum(rate(http_server_request_duration_seconds_count{namespace="{{ namespace }}",feature_flag_key=~"{{ flag }}",feature_flag_variant=~"{{ newVariant }}"}[{{ interval }}]))`

// NewFlagCanary is a Canary rolling out the flags of ConfigMap target
// (key flags.json) in steps of weights, every 10s, rolled back after two
// failed checks of FlagErrorsTemplate (at most 5%).
func NewFlagCanary(ns, name, target string, weights ...int) *serinv1.Canary {
	return &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: serinv1.CanarySpec{
			TargetRef:               serinv1.TargetReference{APIVersion: "v1", Kind: "ConfigMap", Name: target},
			Flags:                   &serinv1.FlagsSpec{Key: "flags.json"},
			ProgressDeadlineSeconds: new(int32(120)),
			Analysis: serinv1.CanaryAnalysis{
				Interval: "10s", Threshold: 2, StepWeights: weights,
				Metrics: []serinv1.CanaryMetric{{
					Name: FlagErrorsTemplate, Interval: "15s",
					TemplateRef:    &serinv1.CrossNamespaceObjectReference{Name: FlagErrorsTemplate},
					ThresholdRange: &serinv1.CanaryThresholdRange{Max: new(5.0)},
				}},
			},
		},
	}
}

// CreateFlags creates the namespace (unless it exists), the target
// ConfigMap holding doc, FlagErrorsTemplate and Canary c.
func (s *Stack) CreateFlags(ctx context.Context, c *serinv1.Canary, doc string) error {
	ns := c.Namespace
	if err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: c.Spec.TargetRef.Name}, Data: map[string]string{c.Spec.FlagsKey(): doc}},
		&serinv1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: FlagErrorsTemplate}, Spec: serinv1.MetricTemplateSpec{Query: flagErrorsQuery}},
		c,
	} {
		if err := s.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// ReleaseFlags writes doc into the target ConfigMap, declaring the share
// of failing requests of each "<flag>/<variant>".
func (s *Stack) ReleaseFlags(ctx context.Context, ns, target, doc string, errorRatios map[string]float64) error {
	var cm corev1.ConfigMap
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: target}, &cm); err != nil {
		return err
	}
	ratios, err := json.Marshal(errorRatios)
	if err != nil {
		return err
	}
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data["flags.json"] = doc
	cm.Annotations = map[string]string{telemetry.VariantErrorRatioAnnotation: string(ratios)}
	return s.Client.Patch(ctx, &cm, patch)
}

// ServedFlags is the flags document flagd serves for target: its primary's.
func (s *Stack) ServedFlags(ctx context.Context, ns, target string) (string, error) {
	var cm corev1.ConfigMap
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: naming.PrimaryName(target)}, &cm); err != nil {
		return "", err
	}
	return cm.Data["flags.json"], nil
}

// VariantShares describes, for flag, how the telemetry source's synthetic
// users split over its variants in doc: "on 62% off 38%".
func VariantShares(doc, flag string) (string, error) {
	d, err := flags.Parse([]byte(doc))
	if err != nil {
		return "", err
	}
	users := map[string]int{}
	for i := range telemetry.FlagUsers {
		r, err := d.Evaluate(flag, telemetry.FlagUser(i))
		if err != nil {
			return "", err
		}
		name := r.Variant
		if r.CodeDefault() {
			name = "(code default)"
		}
		users[name]++
	}
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d%%", n, (100*users[n]+telemetry.FlagUsers/2)/telemetry.FlagUsers)
	}
	return strings.Join(parts, " "), nil
}
