package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AlertProviderKind is the kind name of AlertProvider.
const AlertProviderKind = "AlertProvider"

// AlertProvider is a chat or incident service that receives release events.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=serin
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AlertProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AlertProviderSpec `json:"spec"`

	// +optional
	Status AlertProviderStatus `json:"status,omitempty"`
}

// AlertProviderList is a list of AlertProviders.
//
// +kubebuilder:object:root=true
type AlertProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AlertProvider `json:"items"`
}

// AlertProviderSpec says where and how alerts are sent. The webhook address
// comes from address or, to keep it out of the manifest, from the "address"
// key of the Secret in secretRef.
//
// +kubebuilder:validation:XValidation:rule="has(self.address) || has(self.secretRef)",message="one of address or secretRef must be set"
type AlertProviderSpec struct {
	// Type of the service.
	// +kubebuilder:validation:Enum=slack;msteams;discord;rocket;gchat;generic;cloudevents
	Type string `json:"type"`

	// Channel to post to, where the service has channels.
	// +optional
	Channel string `json:"channel,omitempty"`

	// Username the alerts are posted as.
	// +optional
	Username string `json:"username,omitempty"`

	// Address is the service's webhook URL.
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="address must be an absolute http or https URL"
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Address string `json:"address,omitempty"`

	// Proxy is an HTTP(S) proxy for the calls.
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="proxy must be an absolute http or https URL"
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Proxy string `json:"proxy,omitempty"`

	// SecretRef names a Secret in the provider's namespace whose "address"
	// key holds the webhook URL.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
}

// AlertProviderStatus is the observed state of an AlertProvider.
type AlertProviderStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

func init() {
	SchemeBuilder.Register(&AlertProvider{}, &AlertProviderList{})
}
