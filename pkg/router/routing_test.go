package router

import (
	"context"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/serin-dev/serin/pkg/analysis"
)

func TestSplit(t *testing.T) {
	for _, tt := range []struct{ canary, wantPrimary, wantCanary int }{{0, 100, 0}, {10, 90, 10}, {50, 50, 50}, {100, 0, 100}, {120, 0, 100}, {-5, 100, 0}} {
		p, c := Split(analysis.Traffic{CanaryWeight: tt.canary})
		if int(p) != tt.wantPrimary || int(c) != tt.wantCanary {
			t.Errorf("Split(%d) = %d/%d, want %d/%d", tt.canary, p, c, tt.wantPrimary, tt.wantCanary)
		}
	}
}

func TestParseMatches(t *testing.T) {
	raw := []apiextensionsv1.JSON{
		{Raw: []byte(`{"headers":{"x-canary":{"exact":"insider"}}}`)},
		{Raw: []byte(`{"headers":{"cookie":{"regex":"^(.*?;)?(canary=always)(;.*)?$"}},"uri":{"prefix":"/api"}}`)},
	}
	ms, err := ParseMatches(raw)
	if err != nil {
		t.Fatal(err)
	}
	if k, v, ok := StringMatchOf(ms[0].GetHeaders()["x-canary"]); !ok || k != MatchExact || v != "insider" {
		t.Errorf("first match: %s %q %v", k, v, ok)
	}
	if k, v, _ := StringMatchOf(ms[1].GetHeaders()["cookie"]); k != MatchRegex || v != "^(.*?;)?(canary=always)(;.*)?$" {
		t.Errorf("cookie match: %s %q", k, v)
	}
	if k, v, _ := StringMatchOf(ms[1].GetUri()); k != MatchPrefix || v != "/api" {
		t.Errorf("uri match: %s %q", k, v)
	}
	if _, err := ParseMatches([]apiextensionsv1.JSON{{Raw: []byte(`{"headers":{"x":{"exakt":"1"}}}`)}}); err == nil {
		t.Error("an unknown field was accepted")
	}
}

// setRoutes is SetRoutes for the tests that look at its error alone.
func setRoutes(ctx context.Context, rt Router, r Route, t analysis.Traffic) error {
	_, err := rt.SetRoutes(ctx, r, t)
	return err
}
