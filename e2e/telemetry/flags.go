package telemetry

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
	"github.com/serin-dev/serin/pkg/flags"
	"github.com/serin-dev/serin/pkg/naming"
)

// VariantErrorRatioAnnotation on a flag rollout's target ConfigMap declares
// how the application behaves with each variant: a JSON object from
// "<flag>/<variant>" to the share of requests answered with 500, for
// example {"banner/blue": 0.5}. It travels with the definitions, so a
// release can bring a failing variant.
const VariantErrorRatioAnnotation = "telemetry.serin.dev/variant-error-ratio"

// FlagUsers is how many synthetic users evaluate a flag rollout's flags:
// user-0 ... user-399, with the countries of FlagUserCountry.
const FlagUsers = 400

// FlagUser is the evaluation context of synthetic user i.
func FlagUser(i int) map[string]any {
	return map[string]any{"targetingKey": fmt.Sprintf("user-%d", i), "country": []string{"US", "DE", "FR", "CA"}[i%4]}
}

// syncFlags evaluates every flag of the document flagd serves (the
// primary) for the synthetic users, as flagd would, and declares for each
// variant the share of RPS its users send, as an application instrumented
// with OpenTelemetry and OpenFeature reports it. A variant no user gets
// any more keeps its series at rate 0.
func (s *Source) syncFlags(ctx context.Context, c *serinv1.Canary) error {
	var primary, target corev1.ConfigMap
	name := c.Spec.TargetRef.Name
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: naming.PrimaryName(name)}, &primary); err != nil {
		return fmt.Errorf("reading the flags flagd serves for %s/%s: %w", c.Namespace, c.Name, err)
	}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, &target); err != nil {
		return fmt.Errorf("reading ConfigMap %s/%s: %w", c.Namespace, name, err)
	}
	ratios := map[string]float64{}
	if v, ok := target.Annotations[VariantErrorRatioAnnotation]; ok {
		if err := json.Unmarshal([]byte(v), &ratios); err != nil {
			return fmt.Errorf("ConfigMap %s/%s: %s: %w", c.Namespace, name, VariantErrorRatioAnnotation, err)
		}
	}
	doc, err := flags.Parse([]byte(primary.Data[c.Spec.FlagsKey()]))
	if err != nil {
		return fmt.Errorf("ConfigMap %s/%s: %w", primary.Namespace, primary.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flagVariants == nil {
		s.flagVariants = map[string]map[string]bool{}
	}
	for _, flag := range doc.Flags() {
		users := map[string]int{}
		for i := range FlagUsers {
			r, err := doc.Evaluate(flag, FlagUser(i))
			if err != nil {
				return fmt.Errorf("ConfigMap %s/%s: %w", primary.Namespace, primary.Name, err)
			}
			if !r.CodeDefault() {
				users[r.Variant]++
			}
		}
		seriesKey := c.Namespace + "/" + flag
		if s.flagVariants[seriesKey] == nil {
			s.flagVariants[seriesKey] = map[string]bool{}
		}
		for variant := range s.flagVariants[seriesKey] {
			if users[variant] == 0 {
				s.Exporter.SetFlagVariant(c.Namespace, flag, variant, 0, 1, defaultLatency)
			}
		}
		for variant, n := range users {
			ratio := ratios[flag+"/"+variant]
			if ratio < 0 || ratio > 1 {
				return fmt.Errorf("ConfigMap %s/%s: %s: %s/%s must be in [0, 1], got %v", c.Namespace, name, VariantErrorRatioAnnotation, flag, variant, ratio)
			}
			s.Exporter.SetFlagVariant(c.Namespace, flag, variant, s.RPS*float64(n)/FlagUsers, 1-ratio, defaultLatency)
			s.flagVariants[seriesKey][variant] = true
		}
	}
	return nil
}
