package v1beta1

// Condition types of a Canary besides the kstatus ones (Ready, Reconciling,
// Stalled) that come from github.com/fluxcd/pkg/apis/meta.
const (
	// PromotedCondition is True when the primary runs the target's current
	// revision, and False while a release is in flight or after it failed.
	PromotedCondition = "Promoted"

	// FieldConflictCondition is True when another field manager (typically
	// a GitOps tool re-applying Git) set a field the controller manages:
	// the target's replicas while no release runs (reason TargetScaledUp),
	// or the apex Service's selector (reason ApexSelectorChanged). The
	// controller undoes it each time; the condition names the manager and
	// the fix, and stays until the next release begins.
	FieldConflictCondition = "FieldConflict"
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
	// ApexSelectorChangedReason: another field manager rewrote the apex
	// Service's selector.
	ApexSelectorChangedReason = "ApexSelectorChanged"
	// AlertFailedReason is the Event reason of an alert that could not be
	// delivered.
	AlertFailedReason = "AlertFailed"
)
