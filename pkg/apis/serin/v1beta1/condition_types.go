package v1beta1

// Condition types of a Canary besides the kstatus ones (Ready, Reconciling,
// Stalled) that come from github.com/fluxcd/pkg/apis/meta.
const (
	// PromotedCondition is True when the primary runs the target's current
	// revision, and False while a release is in flight or after it failed.
	PromotedCondition = "Promoted"
)

// CanaryFinalizer holds a Canary with revertOnDeletion until the target and
// its Services are restored.
const CanaryFinalizer = "finalizers.serin.dev"

// Reasons of the Canary conditions, besides the phase names.
const (
	// TargetNotFoundReason: the targetRef names no workload.
	TargetNotFoundReason = "TargetNotFound"
	// InvalidTargetReason: the target cannot be copied (for example, no
	// selector label Serin knows).
	InvalidTargetReason = "InvalidTarget"
	// RouterUnavailableReason: the provider's router cannot be used.
	RouterUnavailableReason = "RouterUnavailable"
	// UnsupportedStrategyReason: the provider cannot carry the analysis's
	// strategy (the kubernetes provider supports blue/green only).
	UnsupportedStrategyReason = "UnsupportedStrategy"
	// InvalidMetricReason: a metric check cannot run as written (for
	// example its MetricTemplate does not exist).
	InvalidMetricReason = "InvalidMetric"
	// ReconciliationFailedReason: an API call failed; it is retried.
	ReconciliationFailedReason = "ReconciliationFailed"
	// NotOwnedReason: an object Serin would write exists and was not created
	// by the Canary; Serin does not take it over unless it is handed over.
	NotOwnedReason = "NotOwned"
	// AlertFailedReason is the Event reason of an alert that could not be
	// delivered.
	AlertFailedReason = "AlertFailed"
)
