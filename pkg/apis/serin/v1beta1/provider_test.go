package v1beta1_test

import (
	"os"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// TestProvidersMatchCRD keeps the Enum marker on Provider (as generated into
// the CRD) and Providers() in step.
func TestProvidersMatchCRD(t *testing.T) {
	data, err := os.ReadFile("../../../../artifacts/crds/serin.dev_canaries.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Properties struct {
							Spec struct {
								Properties struct {
									Provider struct {
										Enum []serinv1.Provider `json:"enum"`
									} `json:"provider"`
								} `json:"properties"`
							} `json:"spec"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("the Canary CRD has %d versions, want 1", len(crd.Spec.Versions))
	}
	enum := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties.Spec.Properties.Provider.Enum
	if !slices.Equal(enum, serinv1.Providers()) {
		t.Errorf("the CRD's spec.provider enum is %q, Providers() is %q: keep the Enum marker on Provider and the list in step", enum, serinv1.Providers())
	}
}

func TestProvider(t *testing.T) {
	for _, tc := range []struct {
		p         serinv1.Provider
		valid     bool
		canonical serinv1.Provider
	}{
		{serinv1.ProviderKubernetes, true, serinv1.ProviderKubernetes},
		{serinv1.ProviderIstio, true, serinv1.ProviderIstio},
		{serinv1.ProviderNGINX, true, serinv1.ProviderNGINX},
		{serinv1.ProviderContour, true, serinv1.ProviderContour},
		{serinv1.ProviderGatewayAPI, true, serinv1.ProviderGatewayAPI},
		{"gatewayapi:v1", true, serinv1.ProviderGatewayAPI},
		{"gatewayapi:v1beta1", true, serinv1.ProviderGatewayAPI},
		{"", false, ""},
		{"linkerd", false, "linkerd"},
		{"Istio", false, "Istio"},
		{"gatewayapi:v2", false, "gatewayapi:v2"},
	} {
		if got := tc.p.Valid(); got != tc.valid {
			t.Errorf("Provider(%q).Valid() = %v, want %v", tc.p, got, tc.valid)
		}
		if got := tc.p.Canonical(); got != tc.canonical {
			t.Errorf("Provider(%q).Canonical() = %q, want %q", tc.p, got, tc.canonical)
		}
	}
	list := serinv1.Providers()
	list[0] = "changed"
	if serinv1.Providers()[0] != serinv1.ProviderKubernetes {
		t.Error("changing the slice Providers returned changed the list")
	}
}

// TestProvidersMatchChartSchema keeps the chart's provider value, checked
// by its values schema, in step with Providers().
func TestProvidersMatchChartSchema(t *testing.T) {
	data, err := os.ReadFile("../../../../charts/serin/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Provider struct {
				Enum []serinv1.Provider `json:"enum"`
			} `json:"provider"`
		} `json:"properties"`
	}
	if err := yaml.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	got, want := slices.Sorted(slices.Values(schema.Properties.Provider.Enum)), slices.Sorted(slices.Values(serinv1.Providers()))
	if !slices.Equal(got, want) {
		t.Errorf("charts/serin/values.schema.json provider enum = %v, want %v", got, want)
	}
}
