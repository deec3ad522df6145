package metrics

import (
	"strings"
	"testing"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func TestRender(t *testing.T) {
	vars := Vars{
		Name: "podinfo", Namespace: "test", Target: "podinfo", Service: "podinfo-svc", Ingress: "podinfo-ing",
		Route: "podinfo-svc", Interval: "1m", Variables: map[string]string{"cluster": "eu-1"},
	}
	tests := []struct {
		name, query, want, wantErr string
	}{
		{"Flagger's functions", `rate(x{ns="{{ namespace }}",w="{{ target }}",s="{{ service }}",i="{{ ingress }}",r="{{ route }}",n="{{ name }}"}[{{ interval }}])`,
			`rate(x{ns="test",w="podinfo",s="podinfo-svc",i="podinfo-ing",r="podinfo-svc",n="podinfo"}[1m])`, ""},
		{"template variables", `x{cluster="{{ variables.cluster }}"}`, `x{cluster="eu-1"}`, ""},
		{"a missing variable is an error", `x{c="{{ variables.region }}"}`, "", "region"},
		{"an unknown function is an error", `{{ pod }}`, "", "pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.query, vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Render = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestRenderFlagVariables(t *testing.T) {
	one := Vars{Flags: []serinv1.FlagChange{{Key: "new-checkout", OldVariant: "off", NewVariant: "on"}}}
	two := Vars{Flags: []serinv1.FlagChange{{Key: "a", OldVariant: "off", NewVariant: "on"}, {Key: "b", NewVariant: "blue-new"}}}
	query := `x{k=~"{{ flag }}",new=~"{{ newVariant }}",old=~"{{ oldVariant }}"}`
	for _, tc := range []struct {
		name    string
		vars    Vars
		want    string
		wantErr string
	}{
		{"one flag", one, `x{k=~"new-checkout",new=~"on",old=~"off"}`, ""},
		{"two flags, joined in order", two, `x{k=~"a|b",new=~"on|blue-new",old=~"off|"}`, ""},
		{"no flag rollout", Vars{}, "", "{{ flag }} needs a flag rollout"},
		{"a quote in a variant name", Vars{Flags: []serinv1.FlagChange{{Key: "f", NewVariant: `on"} or vector(1) #`}}}, "", `flag "f"`},
	} {
		got, err := Render(query, tc.vars)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: Render = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestBuiltinQuery(t *testing.T) {
	vars := Vars{Namespace: "apps", Target: "web", Service: "web-svc", Ingress: "web-ing", Interval: "1m"}
	tests := []struct {
		provider serinv1.Provider
		metric   string
		contains []string
	}{
		{serinv1.ProviderIstio, serinv1.MetricRequestSuccessRate, []string{"istio_requests_total", `reporter="destination"`, `destination_workload="web"`, `destination_workload_namespace="apps"`, "[1m]"}},
		{serinv1.ProviderIstio, serinv1.MetricRequestDuration, []string{"histogram_quantile(0.99", "istio_request_duration_milliseconds_bucket", `destination_workload="web"`}},
		{serinv1.ProviderContour, serinv1.MetricRequestSuccessRate, []string{"envoy_cluster_upstream_rq{", `envoy_cluster_name=~"apps_web-svc-canary_[0-9a-zA-Z-]+"`}},
		{serinv1.ProviderContour, serinv1.MetricRequestDuration, []string{"envoy_cluster_upstream_rq_time_bucket", "histogram_quantile(0.99"}},
		{serinv1.ProviderNGINX, serinv1.MetricRequestSuccessRate, []string{"nginx_ingress_controller_requests", `ingress="web-ing"`, `canary!=""`}},
		{serinv1.ProviderNGINX, serinv1.MetricRequestDuration, []string{"nginx_ingress_controller_response_duration_seconds_bucket", "* 1000"}},
		{serinv1.ProviderGatewayAPI, serinv1.MetricRequestSuccessRate, []string{"http_request_duration_seconds_count", `pod=~"web-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`}},
		{serinv1.ProviderKubernetes, serinv1.MetricRequestDuration, []string{"http_request_duration_seconds_bucket", "* 1000"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider)+"/"+tt.metric, func(t *testing.T) {
			q, ok := BuiltinQuery(tt.provider, tt.metric)
			if !ok {
				t.Fatal("not built in")
			}
			got, err := Render(q, vars)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.contains {
				if !strings.Contains(got, c) {
					t.Errorf("%s\ndoes not contain %s", got, c)
				}
			}
		})
	}
	if _, ok := BuiltinQuery(serinv1.ProviderIstio, "error-rate"); ok {
		t.Error("error-rate is not built in")
	}
}

// TestRenderRefusesUnboundedTemplates: a query is written by whoever may
// create a Canary or a MetricTemplate, so the constructs whose rendering
// time or size its length does not bound are refused before they run.
func TestRenderRefusesUnboundedTemplates(t *testing.T) {
	for query, want := range map[string]string{
		`{{range 50000000}}x{{end}}`:                            "may not use {{range",
		`{{ printf "%01000000d" 0 }}`:                           "may not call printf",
		`{{define "a"}}x{{end}}{{template "a"}}`:                "may not define templates",
		`{{ $x := variables.a }}{{ $x }}`:                       "may not declare or assign variables",
		`{{ with variables.a }}{{ print . . . }}{{ end }}`:      "may not call print",
		`x{a="{{ variables.a }}"} {{ if eq namespace "apps" }}`: "parsing",
	} {
		_, err := Render(query, Vars{Namespace: "apps", Variables: map[string]string{"a": "b"}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Render(%q): %v, want an error containing %q", query, err, want)
		}
	}
	got, err := Render(`x{a="{{ variables.a }}"}{{ if eq namespace "apps" }} > 0{{ end }}{{ with variables.a }}{{ len . }}{{ end }}`,
		Vars{Namespace: "apps", Variables: map[string]string{"a": "b"}})
	if err != nil || got != `x{a="b"} > 01` {
		t.Errorf("a bounded template rendered %q, %v", got, err)
	}
}
