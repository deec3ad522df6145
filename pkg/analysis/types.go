// Package analysis decides how a Canary release advances. It is pure: given
// the spec, the status and what the reconciler observed, Decide returns the
// next status, the routing and the actions to apply, with no I/O. Every rule
// of the lifecycle is a row in its table tests.
package analysis

import (
	"time"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// DefaultProgressDeadline applies when spec.progressDeadlineSeconds is unset.
const DefaultProgressDeadline = 10 * time.Minute

// Input is everything Decide needs.
type Input struct {
	Spec   serinv1.CanarySpec
	Status serinv1.CanaryStatus
	Now    time.Time

	// Revision identifies the target's current pod template and the
	// content of the configs it references.
	Revision string

	// Primary and Canary describe the two workloads.
	Primary Workload
	Canary  Workload

	// Checks holds the results of the checks a previous Decide with the
	// same Input asked for in Decision.Run; nil before they ran.
	Checks *CheckResults

	// Operation is the manual operation requested and not handled yet, if
	// any. Decide carries it out or refuses it, and records its ID in
	// status.lastHandledOperation either way.
	Operation *Operation

	// ErrorLimit is the controller's default of the consecutive error
	// limit (DefaultErrorLimit when zero); the Canary's own fields override
	// it.
	ErrorLimit int
}

// Workload is the observed state of the primary or the canary workload.
type Workload struct {
	// Exists is false while the workload has not been created.
	Exists bool
	// Ready is true when its rollout is complete and enough pods are ready.
	Ready bool
	// Revision is the revision the workload's pod template runs, when
	// Serin recorded it there (the primary's serin.dev/revision).
	Revision string
	// Message says why it is not ready.
	Message string
	// Pods is how many pods it wants and ReadyPods how many are
	// available. The canary's weight is capped at ReadyPods/Pods of the
	// scheduled step, so traffic never outgrows the ready share.
	Pods, ReadyPods int32
	// ScaledUp is true when the workload's spec asks for pods. The target
	// asks for none while no release runs.
	ScaledUp bool
	// ScaledBy names the field managers other than Serin that own the
	// workload's replica count (separated by ", "), for the message when
	// one scales the target up while no release runs.
	ScaledBy string
}

// CheckRequest lists the checks to run at this step. Gates do not count
// failures; the other checks add one failed check per failure.
type CheckRequest struct {
	// Gate is the confirm-* webhook type to call, if any.
	Gate serinv1.HookType
	// Rollback calls the rollback webhooks; any success rolls back.
	Rollback bool
	// PreRollout calls the pre-rollout webhooks.
	PreRollout bool
	// Analysis calls the rollout webhooks and runs the metric checks.
	Analysis bool
}

// CheckResults are what the checks of a CheckRequest observed, without any
// judgement: Decide judges them against the spec.
type CheckResults struct {
	// Webhooks has one observation per webhook called.
	Webhooks []WebhookObservation
	// Metrics has one observation per metric queried.
	Metrics []MetricObservation
}

// Decision is the outcome of Decide.
type Decision struct {
	// Run, when set, asks the reconciler to run these checks and call Decide
	// again with their results; nothing else in the Decision is set then.
	Run *CheckRequest

	// Status is the next status. The reconciler patches it after applying
	// Actions.
	Status serinv1.CanaryStatus

	// Actions are applied in order; each is idempotent.
	Actions []Action

	// Events are emitted after the actions succeeded.
	Events []Event

	// RequeueAfter is when the Canary needs another look without any change
	// in the cluster; zero means only a change triggers it.
	RequeueAfter time.Duration

	// Message is the message of the Canary's conditions: why the release is
	// where it is.
	Message string

	// Invalid, when set, says why the analysis cannot run as written (a
	// metric condition that does not compile or evaluate). Nothing moves;
	// the reconciler marks the Canary Stalled and looks again an interval
	// later.
	Invalid string
}

// ActionKind is a change to the cluster.
type ActionKind string

const (
	// EnsurePrimary creates <target>-primary from the target if it is
	// missing.
	EnsurePrimary ActionKind = "EnsurePrimary"
	// EnsureServices applies the apex, primary and canary Services.
	EnsureServices ActionKind = "EnsureServices"
	// ScaleTargetToZero scales the target down once the primary serves.
	ScaleTargetToZero ActionKind = "ScaleTargetToZero"
	// ScaleCanaryUp scales the target up so the new revision runs.
	ScaleCanaryUp ActionKind = "ScaleCanaryUp"
	// ScaleCanaryDown scales the target back to zero.
	ScaleCanaryDown ActionKind = "ScaleCanaryDown"
	// PromotePrimary copies the target's pod template (and its configs)
	// into the primary, provided the target still holds Action.Revision:
	// only the analysed revision is promoted.
	PromotePrimary ActionKind = "PromotePrimary"
	// RestorePrimary puts the kept copy of Action.Revision, the last
	// promoted revision, back into the primary: a rollback after a
	// promotion had started to overwrite it.
	RestorePrimary ActionKind = "RestorePrimary"
	// SetTraffic routes traffic as in Action.Traffic.
	SetTraffic ActionKind = "SetTraffic"
	// RunPostRollout calls the post-rollout webhooks; their outcome is only
	// logged.
	RunPostRollout ActionKind = "RunPostRollout"
)

// Action is one step of the act phase.
type Action struct {
	Kind ActionKind
	// Traffic is set for SetTraffic.
	Traffic *Traffic
	// Revision is set for PromotePrimary: the revision that was analysed.
	Revision string
}

// Traffic is the routing a router applies.
type Traffic struct {
	// CanaryWeight is the canary's share in percent; the primary gets the
	// rest.
	CanaryWeight int
	// Mirror copies MirrorWeight percent of the primary's traffic to the
	// canary.
	Mirror       bool
	MirrorWeight int
	// MatchToCanary routes requests matching analysis.match to the canary.
	MatchToCanary bool
}

// Event is a Kubernetes Event about the Canary.
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// Event reasons.
const (
	ReasonInitializing       = "Initializing"
	ReasonInitialized        = "Initialized"
	ReasonNewRevision        = "NewRevision"
	ReasonRestarted          = "AnalysisRestarted"
	ReasonWaitingApproval    = "WaitingForApproval"
	ReasonAdvanced           = "Advanced"
	ReasonWeightCapped       = "WeightCapped"
	ReasonChecksFailed       = "ChecksFailed"
	ReasonNoVerdict          = "NoVerdict"
	ReasonWaitingPromotion   = "WaitingForPromotion"
	ReasonPromoting          = "Promoting"
	ReasonFinalising         = "Finalising"
	ReasonSucceeded          = "Succeeded"
	ReasonRolledBack         = "RolledBack"
	ReasonDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonRevertedToPromoted = "RevertedToPromoted"
	ReasonSkippedAnalysis    = "SkippedAnalysis"
	ReasonOperationRefused   = "OperationRefused"
	ReasonIntervalClamped    = "IntervalClamped"
	ReasonTargetScaledUp     = "TargetScaledUp"
)
