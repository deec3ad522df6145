// Package v1beta1 holds the serin.dev/v1beta1 API: Canary, MetricTemplate and
// AlertProvider. Field names and meanings follow Flagger's flagger.app/v1beta1
// so that a Flagger manifest works after changing only its apiVersion.
//
// +kubebuilder:object:generate=true
// +groupName=serin.dev
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of the serin.dev kinds.
	GroupVersion = schema.GroupVersion{Group: "serin.dev", Version: "v1beta1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
