package metrics

import (
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// builtinQueries are the request-success-rate (percent) and
// request-duration (p99, milliseconds) queries of each provider, on the
// series its data plane exports, for the canary's traffic only.
var builtinQueries = map[serinv1.Provider]map[string]string{
	serinv1.ProviderIstio: {
		serinv1.MetricRequestSuccessRate: `sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",response_code!~"5.*"}[{{ interval }}])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}])) * 100`,
		serinv1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}])) by (le))`,
	},
	serinv1.ProviderContour: {
		serinv1.MetricRequestSuccessRate: `sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+",envoy_response_code!~"5.*"}[{{ interval }}])) / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"}[{{ interval }}])) * 100`,
		serinv1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"}[{{ interval }}])) by (le))`,
	},
	serinv1.ProviderNGINX: {
		serinv1.MetricRequestSuccessRate: `sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!="",status!~"5.*"}[{{ interval }}])) / sum(rate(nginx_ingress_controller_requests{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) * 100`,
		serinv1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(nginx_ingress_controller_response_duration_seconds_bucket{namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""}[{{ interval }}])) by (le)) * 1000`,
	},
}

// appQueries read the application's own http_request_duration_seconds
// histogram from the canary's pods (<target>-<replicaset hash>-<suffix>),
// for providers whose data plane has no per-workload series.
var appQueries = map[string]string{
	serinv1.MetricRequestSuccessRate: `sum(rate(http_request_duration_seconds_count{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",status!~"5.*"}[{{ interval }}])) / sum(rate(http_request_duration_seconds_count{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100`,
	serinv1.MetricRequestDuration:    `histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) by (le)) * 1000`,
}

// BuiltinQuery returns the query template of a built-in metric for a
// provider, and false when name is not built in.
func BuiltinQuery(p serinv1.Provider, name string) (string, bool) {
	if q, ok := builtinQueries[p][name]; ok {
		return q, true
	}
	q, ok := appQueries[name]
	return q, ok
}
