package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricTemplateKind is the kind name of MetricTemplate.
const MetricTemplateKind = "MetricTemplate"

// MetricTemplate is a reusable metric query and the provider that runs it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=serin
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetricTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec MetricTemplateSpec `json:"spec"`

	// +optional
	Status MetricTemplateStatus `json:"status,omitempty"`
}

// MetricTemplateList is a list of MetricTemplates.
//
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}

// MetricTemplateSpec is a query and where to run it.
type MetricTemplateSpec struct {
	// Provider runs the query.
	Provider MetricTemplateProvider `json:"provider"`

	// Query is a Go template; it may use {{ target }}, {{ namespace }},
	// {{ interval }}, {{ variables.<name> }} and the like.
	// +kubebuilder:validation:MinLength=1
	Query string `json:"query"`
}

// MetricProviderType names a metrics backend.
//
// +kubebuilder:validation:Enum=prometheus;datadog;cloudwatch;newrelic;graphite;influxdb;dynatrace
type MetricProviderType string

// MetricTemplateProvider describes how to reach a metrics backend.
//
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'cloudwatch' || (has(self.region) && size(self.region) > 0)",message="provider.region is required for type cloudwatch",fieldPath=.region
// +kubebuilder:validation:XValidation:rule="!has(self.type) || !(self.type in ['dynatrace', 'graphite', 'influxdb']) || has(self.address)",message="provider.address is required for types dynatrace, graphite and influxdb",fieldPath=.address
type MetricTemplateProvider struct {
	// Type of the backend (default prometheus).
	// +kubebuilder:default=prometheus
	// +optional
	Type MetricProviderType `json:"type,omitempty"`

	// Address of the backend's API; for prometheus, empty means the
	// Canary's or the controller's metrics server.
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="address must be an absolute http or https URL"
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Address string `json:"address,omitempty"`

	// SecretRef names a Secret in the template's namespace with the
	// credentials (username/password, token, or the provider's API keys).
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`

	// Headers are added to every request to the backend.
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`

	// InsecureSkipVerify disables TLS verification of the backend.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`

	// Timeout of one query (default 5s).
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s')",message="timeout must be a positive duration, for example 5s"
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Timeout string `json:"timeout,omitempty"`

	// Region of the backend (cloudwatch).
	// +optional
	Region string `json:"region,omitempty"`
}

// MetricTemplateStatus is the observed state of a MetricTemplate.
type MetricTemplateStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

func init() {
	SchemeBuilder.Register(&MetricTemplate{}, &MetricTemplateList{})
}
