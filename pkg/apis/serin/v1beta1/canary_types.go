package v1beta1

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// CanaryKind is the kind name of Canary.
const CanaryKind = "Canary"

// Canary runs every new revision of a workload through an analysis before it
// replaces the production copy (<target>-primary).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=serin
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="FailedChecks",type=integer,JSONPath=`.status.failedChecks`
// +kubebuilder:printcolumn:name="LastTransitionTime",type=date,JSONPath=`.status.lastTransitionTime`
type Canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec CanarySpec `json:"spec"`

	// +kubebuilder:default:={"observedGeneration":-1}
	Status CanaryStatus `json:"status,omitempty"`
}

// Operation annotations ask the controller for a manual operation on a
// release (kubectl serin promote, abort, retry, pause, resume). They are
// annotations, not spec fields, so a GitOps tool that applies the Canary
// server-side leaves them alone. The controller handles each operation ID
// once and records it in status.lastHandledOperation instead of removing the
// annotations, like Flux's reconcile.fluxcd.io/requestedAt: a newer request
// written meanwhile is never lost.
const (
	// OperationAnnotation is the operation: promote, promote-full, abort,
	// retry, pause, resume or undo.
	OperationAnnotation = "serin.dev/operation"
	// OperationIDAnnotation identifies one request; an operation without it
	// is ignored. kubectl serin writes the request time (RFC 3339).
	OperationIDAnnotation = "serin.dev/operation-id"
	// OperationByAnnotation names who asked, for the Event.
	OperationByAnnotation = "serin.dev/operation-by"
	// OperationRevisionAnnotation is the revision an undo restores into
	// the primary (a kept revision's serin.dev/revision).
	OperationRevisionAnnotation = "serin.dev/operation-revision"
)

const (
	// RevisionAnnotation on the primary's pod template, and on a kept
	// revision, names the revision it runs.
	RevisionAnnotation = "serin.dev/revision"
	// KeptRevisionLabel on a ControllerRevision names the Canary whose
	// primary ran the revision it keeps.
	KeptRevisionLabel = "serin.dev/canary"
)

// CanaryList is a list of Canaries.
//
// +kubebuilder:object:root=true
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Canary `json:"items"`
}

// Provider names a traffic router. Flagger spells the Gateway API router
// "gatewayapi:v1" (or "gatewayapi:v1beta1"); both spellings are kept so that
// Flagger manifests apply unchanged.
//
// The Enum marker lists Providers(), in the same order; the tests check the
// generated CRD against the list.
//
// +kubebuilder:validation:Enum=kubernetes;istio;nginx;contour;gatewayapi;gatewayapi:v1;gatewayapi:v1beta1
type Provider string

// The traffic routers Serin knows.
const (
	ProviderKubernetes Provider = "kubernetes"
	ProviderIstio      Provider = "istio"
	ProviderNGINX      Provider = "nginx"
	ProviderContour    Provider = "contour"
	ProviderGatewayAPI Provider = "gatewayapi"
	// ProviderGatewayAPIV1 and ProviderGatewayAPIV1beta1 are Flagger's
	// spellings of ProviderGatewayAPI; they name the same router.
	ProviderGatewayAPIV1      Provider = "gatewayapi:v1"
	ProviderGatewayAPIV1beta1 Provider = "gatewayapi:v1beta1"
)

// providers are the values spec.provider and --provider accept.
var providers = []Provider{
	ProviderKubernetes, ProviderIstio, ProviderNGINX, ProviderContour,
	ProviderGatewayAPI, ProviderGatewayAPIV1, ProviderGatewayAPIV1beta1,
}

// Providers returns every value spec.provider accepts, aliases included, in
// the order of the CRD's enum. The caller may change the slice.
func Providers() []Provider {
	return slices.Clone(providers)
}

// Valid says whether p is one of Providers. The empty provider is not: it
// stands for the controller's default, which must be resolved first.
func (p Provider) Valid() bool {
	return slices.Contains(providers, p)
}

// Canonical is the provider whose router serves p: ProviderGatewayAPI for
// its aliases, p itself otherwise.
func (p Provider) Canonical() Provider {
	switch p {
	case ProviderGatewayAPIV1, ProviderGatewayAPIV1beta1:
		return ProviderGatewayAPI
	}
	return p
}

// CanarySpec is the desired state of a Canary.
//
// The rules that depend on the router apply only when spec.provider is set:
// an empty provider is the controller's --provider, which the API server
// does not know.
//
// +kubebuilder:validation:XValidation:rule="self.targetRef.kind == 'ConfigMap' || has(self.service)",message="service is required for a Deployment or DaemonSet target",fieldPath=.service
// +kubebuilder:validation:XValidation:rule="self.targetRef.kind == 'ConfigMap' || !has(self.flags)",message="flags needs targetRef.kind ConfigMap: it locates flag definitions in a ConfigMap target",fieldPath=.flags
// +kubebuilder:validation:XValidation:rule="self.targetRef.kind != 'ConfigMap' || (!has(self.provider) && !has(self.service) && !has(self.ingressRef) && !has(self.autoscalerRef))",message="a ConfigMap target rolls out flags through <target>-primary, not through a router: provider, service, ingressRef and autoscalerRef do not apply",fieldPath=.targetRef
// +kubebuilder:validation:XValidation:rule="self.targetRef.kind != 'ConfigMap' || ((!has(self.analysis.match) || size(self.analysis.match) == 0) && (!has(self.analysis.mirror) || !self.analysis.mirror) && !has(self.analysis.sessionAffinity) && !has(self.analysis.iterations))",message="a ConfigMap target's rollout is stepped by weight: analysis.match, mirror, sessionAffinity and iterations do not apply",fieldPath=.analysis
// +kubebuilder:validation:XValidation:rule="!has(self.service) || (has(self.service.name) && size(self.service.name) > 0) || (size(self.targetRef.name) <= 55 && self.targetRef.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$'))",message="targetRef.name names the Services when service.name is empty, so it must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter) of at most 55 characters; otherwise set service.name",fieldPath=.targetRef.name
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'nginx' || has(self.ingressRef)",message="provider nginx requires ingressRef, the Ingress it copies for the canary",fieldPath=.ingressRef
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || !self.provider.startsWith('gatewayapi') || (has(self.service.gatewayRefs) && size(self.service.gatewayRefs) > 0)",message="provider gatewayapi requires service.gatewayRefs, the Gateways the HTTPRoute attaches to",fieldPath=.service.gatewayRefs
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider == 'istio' || !has(self.analysis.match) || size(self.analysis.match) == 0 || !(has(self.analysis.stepWeight) || has(self.analysis.stepWeights))",message="analysis.match with stepWeight or stepWeights needs provider istio; other providers route analysis.match only in A/B tests (iterations)",fieldPath=.analysis.match
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider == 'istio' || self.provider.startsWith('gatewayapi') || !has(self.analysis.mirror) || !self.analysis.mirror",message="analysis.mirror needs provider istio or gatewayapi",fieldPath=.analysis.mirror
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider == 'istio' || self.provider.startsWith('gatewayapi') || !has(self.analysis.sessionAffinity)",message="analysis.sessionAffinity needs provider istio or gatewayapi",fieldPath=.analysis.sessionAffinity
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'istio' || !has(self.service.appProtocol) || self.service.appProtocol != 'tcp' || ((!has(self.analysis.match) || size(self.analysis.match) == 0) && (!has(self.service.match) || size(self.service.match) == 0) && (!has(self.service.mirror) || size(self.service.mirror) == 0) && (!has(self.analysis.mirror) || !self.analysis.mirror) && !has(self.analysis.sessionAffinity))",message="service.appProtocol tcp routes by weight only: it cannot be combined with analysis.match, service.match, service.mirror, analysis.mirror or analysis.sessionAffinity",fieldPath=.service.appProtocol
type CanarySpec struct {
	// Provider is the traffic router for this Canary; empty means the
	// controller's default (its --provider flag).
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// MetricsServer is the Prometheus address used by the built-in metrics;
	// empty means the controller's default (its --metrics-server flag).
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="metricsServer must be an absolute http or https URL"
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	MetricsServer string `json:"metricsServer,omitempty"`

	// TargetRef is the workload under analysis.
	TargetRef TargetReference `json:"targetRef"`

	// AutoscalerRef is the HorizontalPodAutoscaler of the target; Serin
	// copies it for the primary.
	// +optional
	AutoscalerRef *AutoscalerReference `json:"autoscalerRef,omitempty"`

	// IngressRef is the Ingress that the nginx router copies for the canary.
	// +optional
	IngressRef *IngressReference `json:"ingressRef,omitempty"`

	// Service describes the Services and routes Serin generates. It is
	// required for a workload target and not used for a ConfigMap target.
	// +optional
	Service CanaryService `json:"service,omitzero"`

	// Flags says where a ConfigMap target holds its flagd flag
	// definitions. A change to a flag's definition there is rolled out to
	// a growing share of evaluation contexts through <target>-primary, the
	// copy flagd serves.
	// +optional
	Flags *FlagsSpec `json:"flags,omitempty"`

	// Analysis describes how a new revision is tested and promoted.
	Analysis CanaryAnalysis `json:"analysis"`

	// ProgressDeadlineSeconds is how long the canary may take to become
	// ready before the analysis is rolled back.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// SkipAnalysis promotes new revisions without running the analysis.
	// +optional
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`

	// Suspend stops reconciliation; the primary keeps serving as it is.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// RevertOnDeletion restores the target and the routing to their state
	// before Serin took over when the Canary is deleted.
	// +optional
	RevertOnDeletion bool `json:"revertOnDeletion,omitempty"`

	// RevisionHistoryLimit is how many revisions the primary ran before
	// the current one are kept (as apps/v1 ControllerRevisions), so that a
	// rollback after an interrupted promotion, or kubectl serin undo, can
	// restore them (default 3).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
}

// TargetReference names the workload a Canary analyses, or the ConfigMap
// of flagd flag definitions whose changes it rolls out.
//
// +kubebuilder:validation:XValidation:rule="self.kind == 'ConfigMap' ? self.apiVersion == 'v1' : self.apiVersion == 'apps/v1'",message="targetRef.apiVersion must be apps/v1 for a Deployment or DaemonSet and v1 for a ConfigMap",fieldPath=.apiVersion
type TargetReference struct {
	// +kubebuilder:validation:Enum=apps/v1;v1
	// +kubebuilder:default=apps/v1
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind is Deployment or DaemonSet for a workload; ConfigMap for flagd
	// flag definitions (see spec.flags).
	// +kubebuilder:validation:Enum=Deployment;DaemonSet;ConfigMap
	// +kubebuilder:default=Deployment
	// +optional
	Kind string `json:"kind,omitempty"`

	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=245
	Name string `json:"name"`
}

// FlagsSpec locates the flag definitions in a ConfigMap target.
type FlagsSpec struct {
	// Key is the ConfigMap key that holds the flagd flag definitions
	// (schema https://flagd.dev/schema/v0/flags.json); default flags.json.
	// +kubebuilder:default=flags.json
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// MaxFlagChanges bounds status.flags.
const MaxFlagChanges = 32

// FlagChange is a flag whose definition changed in the revision under
// analysis.
type FlagChange struct {
	// Key is the flag's key.
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
	// OldVariant is the variant the promoted definition serves by default,
	// empty for the code default.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	OldVariant string `json:"oldVariant,omitempty"`
	// NewVariant is the variant the new definition serves by default, as
	// the split names it (a "-new" suffix where the promoted definition
	// has the same name for another value), empty for the code default.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	NewVariant string `json:"newVariant,omitempty"`
}

// FlagsKey is the ConfigMap key of a ConfigMap target's flag definitions.
func (s *CanarySpec) FlagsKey() string {
	if s.Flags != nil && s.Flags.Key != "" {
		return s.Flags.Key
	}
	return DefaultFlagsKey
}

// DefaultFlagsKey is the key of the flag definitions when spec.flags.key
// is unset.
const DefaultFlagsKey = "flags.json"

// IsFlagRollout reports whether the Canary rolls out flag definitions (a
// ConfigMap target) rather than a workload.
func (s *CanarySpec) IsFlagRollout() bool { return s.TargetRef.Kind == "ConfigMap" }

// AutoscalerReference names the HorizontalPodAutoscaler of the target.
type AutoscalerReference struct {
	// +kubebuilder:validation:Enum=autoscaling/v2
	// +kubebuilder:default=autoscaling/v2
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// +kubebuilder:validation:Enum=HorizontalPodAutoscaler
	// +kubebuilder:default=HorizontalPodAutoscaler
	// +optional
	Kind string `json:"kind,omitempty"`

	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// PrimaryScalerReplicas overrides the replica bounds of the primary's
	// autoscaler.
	// +optional
	PrimaryScalerReplicas *ScalerReplicas `json:"primaryScalerReplicas,omitempty"`
}

// ScalerReplicas bounds the replicas of an autoscaler.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas"
type ScalerReplicas struct {
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
}

// IngressReference names an Ingress.
type IngressReference struct {
	// +kubebuilder:validation:Enum=networking.k8s.io/v1
	// +kubebuilder:default=networking.k8s.io/v1
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// +kubebuilder:validation:Enum=Ingress
	// +kubebuilder:default=Ingress
	// +optional
	Kind string `json:"kind,omitempty"`

	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// CrossNamespaceObjectReference names an object, by default in the
// namespace of the referrer.
type CrossNamespaceObjectReference struct {
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// +optional
	Kind string `json:"kind,omitempty"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// CanaryService describes the apex, primary and canary Services and the
// routes a router builds in front of them.
type CanaryService struct {
	// Name of the apex Service; defaults to the target's name. It is a
	// DNS-1035 label of at most 55 characters, so that <name>-primary and
	// <name>-canary fit in 63.
	// +kubebuilder:validation:MaxLength=55
	// +kubebuilder:validation:XValidation:rule="size(self) == 0 || self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="service.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter and ending with a letter or digit) of at most 55 characters"
	// +optional
	Name string `json:"name,omitempty"`

	// Port the Services expose.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// PortName names the port; defaults to "http".
	// +optional
	PortName string `json:"portName,omitempty"`

	// TargetPort is the container port; defaults to port.
	// +optional
	TargetPort intstr.IntOrString `json:"targetPort,omitempty"`

	// PortDiscovery exposes every container port of the target too.
	// +optional
	PortDiscovery bool `json:"portDiscovery,omitempty"`

	// AppProtocol of the port (for example http, grpc, tcp).
	// +optional
	AppProtocol string `json:"appProtocol,omitempty"`

	// Timeout of requests routed to the Services, as a duration.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ms|s|m|h))+$`
	// +optional
	Timeout string `json:"timeout,omitempty"`

	// Gateways are the Istio gateways the VirtualService binds to.
	// +optional
	Gateways []string `json:"gateways,omitempty"`

	// Delegation makes the Istio VirtualService a delegate, with no hosts
	// and no gateways, for a root VirtualService that names it in its
	// delegate field.
	// +optional
	Delegation bool `json:"delegation,omitempty"`

	// Headless makes the apex, primary and canary Services headless
	// (clusterIP None). A Service's clusterIP cannot change: switching an
	// existing Canary needs its Services deleted first.
	// +optional
	Headless bool `json:"headless,omitempty"`

	// TrafficDistribution is the Services' spec.trafficDistribution.
	// +kubebuilder:validation:Enum=PreferClose;PreferSameZone;PreferSameNode
	// +optional
	TrafficDistribution string `json:"trafficDistribution,omitempty"`

	// BackendTimeout is the Gateway API HTTPRoute's timeouts.backendRequest:
	// the limit on one request to a backend, as a duration. It must not
	// exceed timeout.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ms|s|m|h))+$`
	// +optional
	BackendTimeout string `json:"backendTimeout,omitempty"`

	// GatewayRefs are the Gateway API parents of the HTTPRoute.
	// +optional
	GatewayRefs []gatewayv1.ParentReference `json:"gatewayRefs,omitempty"`

	// Hosts are extra host names routed to the apex Service.
	// +optional
	Hosts []string `json:"hosts,omitempty"`

	// Match restricts the route to requests matching any of these Istio
	// HTTPMatchRequests (networking.istio.io/v1), in their YAML form.
	// +kubebuilder:validation:items:Type=object
	// +optional
	Match []apiextensionsv1.JSON `json:"match,omitempty"`

	// Rewrite rewrites the path or authority of routed requests.
	// +optional
	Rewrite *HTTPRewrite `json:"rewrite,omitempty"`

	// Retries is an Istio HTTPRetry (networking.istio.io/v1).
	// +kubebuilder:validation:Type=object
	// +optional
	Retries *apiextensionsv1.JSON `json:"retries,omitempty"`

	// Headers is an Istio Headers manipulation (networking.istio.io/v1).
	// +kubebuilder:validation:Type=object
	// +optional
	Headers *apiextensionsv1.JSON `json:"headers,omitempty"`

	// CorsPolicy is an Istio CorsPolicy (networking.istio.io/v1).
	// +kubebuilder:validation:Type=object
	// +optional
	CorsPolicy *apiextensionsv1.JSON `json:"corsPolicy,omitempty"`

	// TrafficPolicy is an Istio TrafficPolicy (networking.istio.io/v1)
	// applied to the primary and canary DestinationRules.
	// +kubebuilder:validation:Type=object
	// +optional
	TrafficPolicy *apiextensionsv1.JSON `json:"trafficPolicy,omitempty"`

	// Mirror lists Istio HTTPMirrorPolicies (networking.istio.io/v1) that
	// copy traffic to other destinations.
	// +kubebuilder:validation:items:Type=object
	// +optional
	Mirror []apiextensionsv1.JSON `json:"mirror,omitempty"`

	// Apex holds labels and annotations for the apex Service and routes.
	// +optional
	Apex *CustomMetadata `json:"apex,omitempty"`

	// Primary holds labels and annotations for the primary Service.
	// +optional
	Primary *CustomMetadata `json:"primary,omitempty"`

	// Canary holds labels and annotations for the canary Service.
	// +optional
	Canary *CustomMetadata `json:"canary,omitempty"`

	// UnmanagedMetadata lists label and annotation keys that the
	// controller never sets on the generated objects, even when apex,
	// primary or canary name them or the target carries them, so that
	// another tool can own them.
	// +optional
	UnmanagedMetadata *UnmanagedMetadata `json:"unmanagedMetadata,omitempty"`
}

// ManagedMetadata is the metadata the controller sets on a generated object
// from custom (service.apex, primary or canary): its labels and
// annotations less the keys unmanagedMetadata leaves to others. Both maps
// are new, and nil when empty.
func (s *CanaryService) ManagedMetadata(custom *CustomMetadata) (labels, annotations map[string]string) {
	if custom == nil {
		return nil, nil
	}
	var unmanaged UnmanagedMetadata
	if s.UnmanagedMetadata != nil {
		unmanaged = *s.UnmanagedMetadata
	}
	return withoutKeys(custom.Labels, unmanaged.Labels), withoutKeys(custom.Annotations, unmanaged.Annotations)
}

// Unmanaged reports whether unmanagedMetadata leaves the label (or, with
// annotation set, the annotation) key to others.
func (s *CanaryService) Unmanaged(key string, annotation bool) bool {
	if s.UnmanagedMetadata == nil {
		return false
	}
	if annotation {
		return slices.Contains(s.UnmanagedMetadata.Annotations, key)
	}
	return slices.Contains(s.UnmanagedMetadata.Labels, key)
}

func withoutKeys(m map[string]string, drop []string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if slices.Contains(drop, k) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// UnmanagedMetadata lists metadata keys left to others.
type UnmanagedMetadata struct {
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Labels []string `json:"labels,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Annotations []string `json:"annotations,omitempty"`
}

// HTTPRewrite rewrites a request before it is forwarded.
type HTTPRewrite struct {
	// URI replaces the path (or its matched prefix).
	// +optional
	URI string `json:"uri,omitempty"`

	// Authority replaces the Host/Authority header.
	// +optional
	Authority string `json:"authority,omitempty"`

	// Type is how the Gateway API router rewrites the path.
	// +kubebuilder:validation:Enum=ReplaceFullPath;ReplacePrefixMatch
	// +optional
	Type string `json:"type,omitempty"`
}

// CustomMetadata is extra metadata for a generated object.
type CustomMetadata struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// CanaryAnalysis describes the schedule and the checks of an analysis.
// A release either shifts traffic in weight steps (stepWeight up to
// maxWeight, or the stepWeights list) or, for blue/green and A/B testing,
// runs a number of iterations.
//
// +kubebuilder:validation:XValidation:rule="(has(self.iterations) ? 1 : 0) + (has(self.stepWeight) ? 1 : 0) + (has(self.stepWeights) ? 1 : 0) == 1",message="exactly one of iterations, stepWeight or stepWeights must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeight) || self.stepWeight <= (has(self.maxWeight) ? self.maxWeight : 100)",message="stepWeight must not exceed maxWeight",fieldPath=.stepWeight
// +kubebuilder:validation:XValidation:rule="!has(self.mirrorWeight) || (has(self.mirror) && self.mirror)",message="mirrorWeight requires mirror: true",fieldPath=.mirrorWeight
// +kubebuilder:validation:XValidation:rule="!has(self.maxWeight) || !has(self.stepWeights) || self.stepWeights.all(w, w <= self.maxWeight)",message="stepWeights must not exceed maxWeight",fieldPath=.stepWeights
type CanaryAnalysis struct {
	// Interval between two analysis iterations. One under 10s runs at 10s,
	// as in Flagger, with a Warning Event (IntervalClamped).
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s')",message="interval must be a positive duration, for example 30s or 1m"
	// +kubebuilder:validation:MaxLength=32
	Interval string `json:"interval"`

	// Threshold is the number of failed checks after which the release is
	// rolled back.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=5
	// +optional
	Threshold int `json:"threshold,omitempty"`

	// Iterations is the number of analysis runs of a blue/green or A/B
	// release.
	// +kubebuilder:validation:Minimum=1
	// +optional
	Iterations int `json:"iterations,omitempty"`

	// MaxWeight is the highest canary weight, in percent (default 100).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxWeight int `json:"maxWeight,omitempty"`

	// StepWeight is the weight, in percent, added at each iteration.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	StepWeight int `json:"stepWeight,omitempty"`

	// StepWeights are the canary weights of the iterations, in percent.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	// +kubebuilder:validation:XValidation:rule="self.isSorted() && self.all(w, self.indexOf(w) == self.lastIndexOf(w))",message="stepWeights must be strictly increasing"
	// +optional
	StepWeights []int `json:"stepWeights,omitempty"`

	// StepWeightPromotion is the weight step used to shift traffic to the
	// primary during promotion; unset means all at once.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	StepWeightPromotion int `json:"stepWeightPromotion,omitempty"`

	// Mirror copies traffic to the canary before shifting any to it
	// (providers istio and gatewayapi).
	// +optional
	Mirror bool `json:"mirror,omitempty"`

	// MirrorWeight is the percentage of traffic mirrored.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MirrorWeight int `json:"mirrorWeight,omitempty"`

	// PrimaryReadyThreshold is the percentage of primary pods that must be
	// ready (default 100).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	PrimaryReadyThreshold *int `json:"primaryReadyThreshold,omitempty"`

	// CanaryReadyThreshold is the percentage of canary pods that must be
	// ready (default 100).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	CanaryReadyThreshold *int `json:"canaryReadyThreshold,omitempty"`

	// Match routes requests matching any of these Istio HTTPMatchRequests
	// (networking.istio.io/v1) to the canary: A/B testing.
	// +kubebuilder:validation:items:Type=object
	// +optional
	Match []apiextensionsv1.JSON `json:"match,omitempty"`

	// SessionAffinity keeps users who reached the canary on it (providers
	// istio and gatewayapi).
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`

	// ConsecutiveErrorLimit is how many intervals in a row a metric or a
	// webhook may go without a verdict (the query returned no data or
	// failed, the webhook did not answer) before that counts as one failed
	// check. Such an interval never advances the release; it holds the step
	// where it is. Default: the controller's --metric-error-limit (3). A
	// metric's own consecutiveErrorLimit takes precedence.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	ConsecutiveErrorLimit *int `json:"consecutiveErrorLimit,omitempty"`

	// Metrics are checked at every iteration.
	// +listType=map
	// +listMapKey=name
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Metrics []CanaryMetric `json:"metrics,omitempty"`

	// Webhooks are called at the stages of the release.
	// +listType=map
	// +listMapKey=name
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Webhooks []CanaryWebhook `json:"webhooks,omitempty"`

	// Alerts send release events to alert providers.
	// +listType=map
	// +listMapKey=name
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Alerts []CanaryAlert `json:"alerts,omitempty"`
}

// SessionAffinity pins users to the canary with a cookie.
//
// +kubebuilder:validation:XValidation:rule="!has(self.partitioned) || !self.partitioned || (has(self.secure) && self.secure)",message="sessionAffinity.partitioned needs secure: browsers drop a Partitioned cookie without Secure",fieldPath=.partitioned
// +kubebuilder:validation:XValidation:rule="!has(self.sameSite) || self.sameSite != 'None' || (has(self.secure) && self.secure)",message="sessionAffinity.sameSite None needs secure: browsers drop a SameSite=None cookie without Secure",fieldPath=.sameSite
// +kubebuilder:validation:XValidation:rule="!has(self.primaryCookieName) || self.primaryCookieName != self.cookieName",message="sessionAffinity.primaryCookieName must differ from cookieName",fieldPath=.primaryCookieName
type SessionAffinity struct {
	// CookieName of the cookie set on canary responses.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[!#-'*+.0-9A-Z^-z|~-]+$`
	CookieName string `json:"cookieName"`

	// PrimaryCookieName of the cookie set on primary responses, so users
	// that reached the primary stay there.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[!#-'*+.0-9A-Z^-z|~-]+$`
	// +optional
	PrimaryCookieName string `json:"primaryCookieName,omitempty"`

	// MaxAge of the cookie in seconds (default 86400).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=86400
	// +optional
	MaxAge int `json:"maxAge,omitempty"`

	// Domain is the cookie's Domain attribute: the hosts it is sent to.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9.-]*$`
	// +optional
	Domain string `json:"domain,omitempty"`

	// Path is the cookie's Path attribute: the paths it is sent with.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[!#-:<-~]*$`
	// +optional
	Path string `json:"path,omitempty"`

	// HttpOnly hides the cookie from scripts in the page.
	// +optional
	HttpOnly bool `json:"httpOnly,omitempty"`

	// Secure sends the cookie over https only.
	// +optional
	Secure bool `json:"secure,omitempty"`

	// SameSite is the cookie's SameSite attribute.
	// +kubebuilder:validation:Enum=Strict;Lax;None
	// +optional
	SameSite string `json:"sameSite,omitempty"`

	// Partitioned stores the cookie in partitioned (per top-level site)
	// storage; browsers require Secure with it.
	// +optional
	Partitioned bool `json:"partitioned,omitempty"`
}

// The built-in metric names; any other name needs a templateRef or a query.
const (
	MetricRequestSuccessRate = "request-success-rate"
	MetricRequestDuration    = "request-duration"
)

// CanaryMetric is a metric check of an analysis.
//
// +kubebuilder:validation:XValidation:rule="self.name in ['request-success-rate', 'request-duration'] || has(self.templateRef) || has(self.query)",message="a metric must be built-in (request-success-rate, request-duration) or set templateRef or query"
// +kubebuilder:validation:XValidation:rule="!has(self.query) || !has(self.templateRef)",message="query and templateRef are mutually exclusive: set one of them"
// +kubebuilder:validation:XValidation:rule="!has(self.templateVariables) || size(self.templateVariables) == 0 || has(self.templateRef) || (has(self.query) && size(self.query) > 0)",message="templateVariables requires templateRef (or an inline query that uses them)",fieldPath=.templateVariables
// +kubebuilder:validation:XValidation:rule="!has(self.threshold) || self.name in ['request-success-rate', 'request-duration']",message="threshold (Flagger's deprecated field) applies to the built-in metrics only: set thresholdRange",fieldPath=.threshold
// +kubebuilder:validation:XValidation:rule="has(self.thresholdRange) || has(self.threshold) || (has(self.successCondition) && size(self.successCondition) > 0) || (has(self.failureCondition) && size(self.failureCondition) > 0)",message="a metric needs a bound, or it passes whatever it measures: set thresholdRange (or threshold for a built-in metric), successCondition or failureCondition"
type CanaryMetric struct {
	// Name of the check; request-success-rate and request-duration are
	// built in.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Interval is the window the query covers (default 1m), at least 1s.
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('1s')",message="interval must be a duration of at least 1s, for example 1m"
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Interval string `json:"interval,omitempty"`

	// ThresholdRange is the range of passing values.
	// +optional
	ThresholdRange *CanaryThresholdRange `json:"thresholdRange,omitempty"`

	// Threshold is Flagger's deprecated bound of a built-in metric: the
	// minimum of request-success-rate, the maximum of request-duration.
	// thresholdRange, when set, takes its place.
	// +optional
	Threshold *float64 `json:"threshold,omitempty"`

	// Query is an inline Prometheus query.
	// +optional
	Query string `json:"query,omitempty"`

	// TemplateRef names the MetricTemplate with the query and provider.
	// +optional
	TemplateRef *CrossNamespaceObjectReference `json:"templateRef,omitempty"`

	// TemplateVariables fill {{ variables.<name> }} in the template's query.
	// +optional
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`

	// SuccessCondition is a CEL expression on the measured value, `result`
	// (a double), that must hold for the check to pass, for example
	// "result < 0.5 && result >= 0". It applies next to thresholdRange.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SuccessCondition string `json:"successCondition,omitempty"`

	// FailureCondition is a CEL expression on `result` that fails the check
	// when it holds.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	FailureCondition string `json:"failureCondition,omitempty"`

	// ConsecutiveErrorLimit is how many intervals in a row this metric may
	// return no data or fail to query before that counts as one failed
	// check; it overrides analysis.consecutiveErrorLimit.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	ConsecutiveErrorLimit *int `json:"consecutiveErrorLimit,omitempty"`
}

// CanaryThresholdRange bounds a metric's passing values; an unset bound is
// open.
//
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="thresholdRange.min must not exceed thresholdRange.max"
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="thresholdRange must set min, max or both"
type CanaryThresholdRange struct {
	// +optional
	Min *float64 `json:"min,omitempty"`
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// Bounds is the metric's range of passing values: thresholdRange, or the
// range the deprecated threshold gives a built-in metric; nil when it has
// neither.
func (m CanaryMetric) Bounds() *CanaryThresholdRange {
	switch {
	case m.ThresholdRange != nil:
		return m.ThresholdRange
	case m.Threshold == nil:
		return nil
	case m.Name == MetricRequestSuccessRate:
		return &CanaryThresholdRange{Min: m.Threshold}
	case m.Name == MetricRequestDuration:
		return &CanaryThresholdRange{Max: m.Threshold}
	}
	return nil
}

// String is the range as people read it, e.g. ">= 99" or ">= 1 and <= 5";
// empty when it has no bound.
func (r *CanaryThresholdRange) String() string {
	if r == nil {
		return ""
	}
	var bounds []string
	if r.Min != nil {
		bounds = append(bounds, fmt.Sprintf(">= %g", *r.Min))
	}
	if r.Max != nil {
		bounds = append(bounds, fmt.Sprintf("<= %g", *r.Max))
	}
	return strings.Join(bounds, " and ")
}

// HookType is when a webhook is called.
//
// +kubebuilder:validation:Enum=pre-rollout;rollout;confirm-rollout;post-rollout;confirm-promotion;rollback;confirm-traffic-increase;event
type HookType string

// The webhook stages, as in Flagger.
const (
	PreRolloutHook             HookType = "pre-rollout"
	RolloutHook                HookType = "rollout"
	ConfirmRolloutHook         HookType = "confirm-rollout"
	PostRolloutHook            HookType = "post-rollout"
	ConfirmPromotionHook       HookType = "confirm-promotion"
	RollbackHook               HookType = "rollback"
	ConfirmTrafficIncreaseHook HookType = "confirm-traffic-increase"
	EventHook                  HookType = "event"
)

// CanaryWebhook is an HTTP call made at a stage of the release.
type CanaryWebhook struct {
	// Name of the webhook.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Type is the stage the webhook runs at (default rollout).
	// +kubebuilder:default=rollout
	// +optional
	Type HookType `json:"type,omitempty"`

	// URL the webhook POSTs to.
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http or https URL"
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`

	// Timeout of one call (default 10s), at most 15m.
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s') && duration(self) <= duration('15m')",message="timeout must be a positive duration of at most 15m, for example 30s"
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Timeout string `json:"timeout,omitempty"`

	// Metadata is sent in the webhook's payload.
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`

	// MuteAlert silences the alert sent when this webhook fails.
	// +optional
	MuteAlert bool `json:"muteAlert,omitempty"`

	// DisableTLS turns off verification of the webhook's TLS certificate,
	// for a hook with a self-signed one. The connection stays encrypted.
	// +optional
	DisableTLS bool `json:"disableTLS,omitempty"`

	// Retries of a failed call within one iteration.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Retries int `json:"retries,omitempty"`

	// SecretRef names a Secret in the Canary's namespace whose data
	// authenticates the call: the key "token" is sent as
	// "Authorization: Bearer <token>", and each key "header.<Name>" as the
	// header <Name>. It is how the controller authenticates to serin-tester.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
}

// AlertSeverity filters which events an alert sends.
//
// +kubebuilder:validation:Enum=info;warn;error
type AlertSeverity string

// CanaryAlert sends release events to an AlertProvider.
type CanaryAlert struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Severity is the lowest severity sent (default info).
	// +kubebuilder:default=info
	// +optional
	Severity AlertSeverity `json:"severity,omitempty"`

	// ProviderRef names the AlertProvider.
	ProviderRef CrossNamespaceObjectReference `json:"providerRef"`
}

// CanaryPhase is where a Canary is in its lifecycle.
//
// +kubebuilder:validation:Enum=Initializing;Initialized;Waiting;Progressing;WaitingPromotion;Promoting;Finalising;Succeeded;Failed;Terminating;Terminated
type CanaryPhase string

// The phases of a Canary, as in Flagger.
const (
	CanaryPhaseInitializing     CanaryPhase = "Initializing"
	CanaryPhaseInitialized      CanaryPhase = "Initialized"
	CanaryPhaseWaiting          CanaryPhase = "Waiting"
	CanaryPhaseProgressing      CanaryPhase = "Progressing"
	CanaryPhaseWaitingPromotion CanaryPhase = "WaitingPromotion"
	CanaryPhasePromoting        CanaryPhase = "Promoting"
	CanaryPhaseFinalising       CanaryPhase = "Finalising"
	CanaryPhaseSucceeded        CanaryPhase = "Succeeded"
	CanaryPhaseFailed           CanaryPhase = "Failed"
	CanaryPhaseTerminating      CanaryPhase = "Terminating"
	CanaryPhaseTerminated       CanaryPhase = "Terminated"
)

// CanaryStatus is the observed state of a Canary. It holds everything the
// controller needs to resume a release after a restart.
type CanaryStatus struct {
	// ObservedGeneration is the last generation that ended Ready or Stalled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`

	// CanaryWeight is the current canary traffic weight, in percent.
	// +optional
	CanaryWeight int `json:"canaryWeight,omitempty"`

	// CanaryWeightCap is set when the last weight step was capped because
	// only part of the canary's pods were ready: it is the weight the step
	// would have had.
	// +optional
	CanaryWeightCap int `json:"canaryWeightCap,omitempty"`

	// Iterations counts the analysis runs of the current release.
	// +optional
	Iterations int `json:"iterations,omitempty"`

	// AnalysisRouted is set once the routing an A/B or mirroring analysis
	// judges (matching requests, or mirrored copies, to the canary) is in
	// place for the current release; its iterations count only after.
	// +optional
	AnalysisRouted bool `json:"analysisRouted,omitempty"`

	// FailedChecks counts the failed checks of the current release.
	// +optional
	FailedChecks int `json:"failedChecks,omitempty"`

	// LastAppliedSpec is the revision hash of the target under analysis.
	// +optional
	LastAppliedSpec string `json:"lastAppliedSpec,omitempty"`

	// LastPromotedSpec is the revision hash the primary runs.
	// +optional
	LastPromotedSpec string `json:"lastPromotedSpec,omitempty"`

	// ObservedTargetGeneration is the target's metadata.generation when
	// the controller last read it. The conditions are about that
	// generation: one with a revision that is not yet released makes the
	// Canary Reconciling, not Ready, from the first look on, so that a
	// GitOps health check that applied it does not read the previous
	// release's outcome.
	// +optional
	ObservedTargetGeneration int64 `json:"observedTargetGeneration,omitempty"`

	// TrackedConfigs maps each tracked ConfigMap and Secret
	// (configmap/<name>, secret/<name>) to its content hash; a Secret's is
	// keyed by the Secret's UID, so it cannot be used to test guesses of
	// its data.
	// +optional
	TrackedConfigs map[string]string `json:"trackedConfigs,omitempty"`

	// Flags lists, for a ConfigMap target whose revision is not the
	// promoted one, the flags whose definition changed (at most
	// MaxFlagChanges, by key), with the variant each side serves by default.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=key
	Flags []FlagChange `json:"flags,omitempty"`

	// LastTransitionTime is when the phase last changed; deadlines count
	// from it.
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`

	// LastIterationTime is when the last analysis step (a check run or a
	// gate call) happened; the next one is due an interval later, also
	// after a controller restart.
	// +optional
	LastIterationTime metav1.Time `json:"lastIterationTime,omitempty"`

	// Metrics holds the last measurement of each metric check of the
	// current release.
	// +listType=map
	// +listMapKey=name
	// +optional
	Metrics []MetricStatus `json:"metrics,omitempty"`

	// Webhooks holds the last outcome of each pre-rollout and rollout
	// webhook of the current release.
	// +listType=map
	// +listMapKey=name
	// +optional
	Webhooks []WebhookStatus `json:"webhooks,omitempty"`

	// InconclusiveSince is when the current run of analysis intervals
	// without a verdict began; unset while every check gives one. The
	// progress deadline bounds such a run.
	// +optional
	InconclusiveSince *metav1.Time `json:"inconclusiveSince,omitempty"`

	// History lists the last decisions of the analysis, newest last.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	History []DecisionRecord `json:"history,omitempty"`

	// PendingEvents are the Events of stored decisions that may not have
	// gone out yet (as Events, alerts and event webhooks). They are written
	// with the decision, so a controller that dies right after the write
	// leaves them to its successor, and dropped once delivered.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +optional
	PendingEvents []PendingEvent `json:"pendingEvents,omitempty"`

	// Paused is set by the pause operation and cleared by resume and
	// abort: the release holds where it is, with its weights, and runs no
	// checks. It lives in the status so that a restarted controller keeps
	// holding.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// LastHandledOperation is the serin.dev/operation-id of the last
	// operation the controller carried out or refused.
	// +optional
	LastHandledOperation string `json:"lastHandledOperation,omitempty"`

	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MetricVerdict is the outcome of one metric check.
//
// +kubebuilder:validation:Enum=Passed;Failed;NoData;Error
type MetricVerdict string

// The outcomes of a metric or webhook check. NoData and Error are no
// verdict: the interval holds, and only when they repeat past the
// consecutive error limit do they count as a failed check.
const (
	MetricPassed MetricVerdict = "Passed"
	MetricFailed MetricVerdict = "Failed"
	MetricNoData MetricVerdict = "NoData"
	MetricError  MetricVerdict = "Error"
)

// MetricStatus is the last measurement of a metric check.
type MetricStatus struct {
	// Name of the metric check.
	Name string `json:"name"`

	// Value measured; unset when there was no data or an error.
	// +optional
	Value *float64 `json:"value,omitempty"`

	// Verdict of the last check.
	Verdict MetricVerdict `json:"verdict"`

	// Message explains the verdict.
	// +optional
	Message string `json:"message,omitempty"`

	// Time of the last check.
	Time metav1.Time `json:"time"`

	// NoData counts the checks of this release that found no data.
	// +optional
	NoData int `json:"noData,omitempty"`

	// Errors counts the checks of this release whose query failed.
	// +optional
	Errors int `json:"errors,omitempty"`

	// ConsecutiveErrors counts the no-data and error checks since the last
	// measured value; at the consecutive error limit they count as a
	// failed check.
	// +optional
	ConsecutiveErrors int `json:"consecutiveErrors,omitempty"`
}

// WebhookStatus is the last outcome of a pre-rollout or rollout webhook.
type WebhookStatus struct {
	// Name of the webhook.
	Name string `json:"name"`

	// Verdict of the last call: Passed (a 2xx answer), Failed (another
	// answer) or Error (no answer).
	Verdict MetricVerdict `json:"verdict"`

	// StatusCode of the last answer; unset when there was none.
	// +optional
	StatusCode int `json:"statusCode,omitempty"`

	// Message explains the verdict.
	// +optional
	Message string `json:"message,omitempty"`

	// Time of the last call.
	Time metav1.Time `json:"time"`

	// Errors counts the calls of this release that got no answer.
	// +optional
	Errors int `json:"errors,omitempty"`

	// ConsecutiveErrors counts the calls without an answer since the last
	// answer; at the consecutive error limit they count as a failed check.
	// +optional
	ConsecutiveErrors int `json:"consecutiveErrors,omitempty"`
}

// PendingEvent is an Event of a stored decision, kept until it was
// delivered.
type PendingEvent struct {
	// ID is the Event's name suffix, the same at every delivery, so an
	// Event recorded before a restart is not recorded twice.
	// +kubebuilder:validation:MaxLength=63
	ID string `json:"id"`

	// Type is Normal or Warning.
	// +kubebuilder:validation:Enum=Normal;Warning
	Type string `json:"type"`

	// Reason of the Event.
	// +kubebuilder:validation:MaxLength=128
	Reason string `json:"reason"`

	// Message of the Event.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// DecisionRecord is one decision of the analysis, kept in status.history.
type DecisionRecord struct {
	// Time of the decision.
	Time metav1.Time `json:"time"`

	// Revision analysed.
	// +optional
	Revision string `json:"revision,omitempty"`

	// Phase after the decision.
	Phase CanaryPhase `json:"phase"`

	// Weight is the canary weight after the decision.
	// +optional
	Weight int `json:"weight,omitempty"`

	// Iteration is the iteration count after the decision.
	// +optional
	Iteration int `json:"iteration,omitempty"`

	// Checks is each check's outcome, for example
	// "request-success-rate=99.5", "latency=no-data" or
	// "load-test=error"; one line, capped in length.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Checks string `json:"checks,omitempty"`

	// Verdict of the interval: Passed, Failed, or Inconclusive when a
	// check gave no verdict.
	// +optional
	Verdict string `json:"verdict,omitempty"`

	// Action taken, for example "advance to 40", "hold", "promote",
	// "rollback".
	// +optional
	Action string `json:"action,omitempty"`
}

// GetConditions returns the status conditions, for fluxcd/pkg/runtime.
func (in *Canary) GetConditions() []metav1.Condition {
	return in.Status.Conditions
}

// SetConditions sets the status conditions, for fluxcd/pkg/runtime.
func (in *Canary) SetConditions(conditions []metav1.Condition) {
	in.Status.Conditions = conditions
}

func init() {
	SchemeBuilder.Register(&Canary{}, &CanaryList{})
}
