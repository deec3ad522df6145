package analysis

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at is a time relative to t0; tests run at now = t0 + 10m.
func at(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

const now = 10 * time.Minute

type specMod func(*serinv1.CanarySpec)

// canarySpec is a stepWeight canary: 20% steps up to 40%, 1m interval,
// threshold 2, deadline 5m.
func canarySpec(mods ...specMod) serinv1.CanarySpec {
	s := serinv1.CanarySpec{
		TargetRef:               serinv1.TargetReference{Kind: "Deployment", Name: "app"},
		ProgressDeadlineSeconds: new(int32(300)),
		Analysis: serinv1.CanaryAnalysis{
			Interval:   "1m",
			Threshold:  2,
			StepWeight: 20,
			MaxWeight:  40,
		},
	}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func blueGreen(iterations int) specMod {
	return func(s *serinv1.CanarySpec) {
		s.Analysis.StepWeight, s.Analysis.MaxWeight, s.Analysis.Iterations = 0, 0, iterations
	}
}

func abTesting(s *serinv1.CanarySpec) {
	s.Analysis.Match = []apiextensionsv1.JSON{{Raw: []byte(`{"headers":{"x-canary":{"exact":"insider"}}}`)}}
}

func mirrored(s *serinv1.CanarySpec) { s.Analysis.Mirror, s.Analysis.MirrorWeight = true, 50 }

func hook(t serinv1.HookType) specMod {
	return func(s *serinv1.CanarySpec) {
		s.Analysis.Webhooks = append(s.Analysis.Webhooks, serinv1.CanaryWebhook{Name: string(t), Type: t, URL: "http://tester/"})
	}
}

func metric(s *serinv1.CanarySpec) {
	s.Analysis.Metrics = append(s.Analysis.Metrics, serinv1.CanaryMetric{
		Name: serinv1.MetricRequestSuccessRate, ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)},
	})
}

// status builds a status in phase p, in its phase since 8m, last step at
// 9m30s: the next step is due in 30s.
func status(p serinv1.CanaryPhase, mods ...func(*serinv1.CanaryStatus)) serinv1.CanaryStatus {
	s := serinv1.CanaryStatus{
		Phase:              p,
		LastAppliedSpec:    "rev2",
		LastPromotedSpec:   "rev1",
		LastTransitionTime: at(8 * time.Minute),
		LastIterationTime:  at(9*time.Minute + 30*time.Second),
	}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func weight(w int) func(*serinv1.CanaryStatus) {
	return func(s *serinv1.CanaryStatus) { s.CanaryWeight = w }
}

func iterations(n int) func(*serinv1.CanaryStatus) {
	return func(s *serinv1.CanaryStatus) { s.Iterations = n }
}

func failed(n int) func(*serinv1.CanaryStatus) {
	return func(s *serinv1.CanaryStatus) { s.FailedChecks = n }
}

// due makes the next analysis step due (last step over an interval ago).
func due(s *serinv1.CanaryStatus) { s.LastIterationTime = at(8 * time.Minute) }

// streak gives metric name n intervals in a row without a verdict.
func streak(name string, n int) func(*serinv1.CanaryStatus) {
	return func(s *serinv1.CanaryStatus) {
		s.Metrics = append(s.Metrics, serinv1.MetricStatus{Name: name, Verdict: serinv1.MetricNoData, NoData: n, ConsecutiveErrors: n})
	}
}

// inconclusiveSince starts a run of intervals without a verdict at d.
func inconclusiveSince(d time.Duration) func(*serinv1.CanaryStatus) {
	return func(s *serinv1.CanaryStatus) {
		t := at(d)
		s.InconclusiveSince = &t
	}
}

func idleAt(rev string) func(*serinv1.CanaryStatus) {
	return func(s *serinv1.CanaryStatus) { s.LastAppliedSpec, s.LastPromotedSpec = rev, rev }
}

var ready = Workload{Exists: true, Ready: true}

// copied is a ready primary that runs the revision under analysis, rev2:
// a promotion copied it.
var copied = Workload{Exists: true, Ready: true, Revision: "rev2"}

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		spec    serinv1.CanarySpec
		status  serinv1.CanaryStatus
		rev     string // default rev2
		primary *Workload
		canary  *Workload
		checks  observer

		wantRun     *CheckRequest
		wantPhase   serinv1.CanaryPhase
		wantWeight  int
		wantIter    int
		wantFailed  int
		wantApplied string // checked when set
		wantPromo   string // checked when set
		wantActions string
		wantEvents  string
		wantRequeue time.Duration
	}{
		// Initialisation.
		{
			name: "a new Canary creates the primary", spec: canarySpec(), status: serinv1.CanaryStatus{},
			primary:   &Workload{},
			wantPhase: serinv1.CanaryPhaseInitializing, wantActions: "EnsurePrimary", wantEvents: "Initializing",
			wantRequeue: 5 * time.Minute,
		},
		{
			name: "the primary is ready: traffic to it, target to zero", spec: canarySpec(),
			status:    serinv1.CanaryStatus{Phase: serinv1.CanaryPhaseInitializing, LastTransitionTime: at(9 * time.Minute)},
			wantPhase: serinv1.CanaryPhaseInitialized, wantApplied: "rev2", wantPromo: "rev2",
			wantActions: "EnsurePrimary SetTraffic(0) ScaleTargetToZero", wantEvents: "Initialized",
		},
		{
			name: "the primary is not ready within the deadline", spec: canarySpec(),
			status:    serinv1.CanaryStatus{Phase: serinv1.CanaryPhaseInitializing, LastTransitionTime: at(time.Minute)},
			primary:   &Workload{Exists: true, Message: "0 of 2 pods ready"},
			wantPhase: serinv1.CanaryPhaseFailed, wantActions: "EnsurePrimary", wantEvents: "!ProgressDeadlineExceeded",
		},
		{
			name: "a failed initialisation completes when the primary becomes ready", spec: canarySpec(),
			status:    serinv1.CanaryStatus{Phase: serinv1.CanaryPhaseFailed, LastTransitionTime: at(time.Minute)},
			wantPhase: serinv1.CanaryPhaseInitialized, wantPromo: "rev2",
			wantActions: "EnsurePrimary SetTraffic(0) ScaleTargetToZero", wantEvents: "Initialized",
		},

		// Idle phases.
		{
			name: "initialized with an unchanged target does nothing", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseInitialized, idleAt("rev2")), wantPhase: serinv1.CanaryPhaseInitialized,
		},
		{
			name: "a new revision starts the analysis", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseInitialized, idleAt("rev1")), wantPhase: serinv1.CanaryPhaseProgressing,
			wantApplied: "rev2", wantActions: "ScaleCanaryUp SetTraffic(0)", wantEvents: "NewRevision", wantRequeue: time.Minute,
		},
		{
			name: "a new revision after a success starts the analysis", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev1"), iterations(3), failed(1)), wantPhase: serinv1.CanaryPhaseProgressing,
			wantApplied: "rev2", wantActions: "ScaleCanaryUp SetTraffic(0)", wantEvents: "NewRevision", wantRequeue: time.Minute,
		},
		{
			name: "a new revision after a failure starts the analysis", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFailed, failed(2)), rev: "rev3", wantPhase: serinv1.CanaryPhaseProgressing,
			wantApplied: "rev3", wantActions: "ScaleCanaryUp SetTraffic(0)", wantEvents: "NewRevision", wantRequeue: time.Minute,
		},
		{
			name: "a failed revision stays failed", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFailed, failed(2)), wantPhase: serinv1.CanaryPhaseFailed, wantFailed: 2,
		},
		{
			name: "reverting the target to the promoted revision starts no analysis", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFailed, failed(2)), rev: "rev1", wantPhase: serinv1.CanaryPhaseSucceeded,
			wantFailed: 2, wantApplied: "rev1", wantActions: "SetTraffic(0) ScaleCanaryDown", wantEvents: "RevertedToPromoted",
		},
		{
			name: "confirm-rollout is asked before starting", spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status:  status(serinv1.CanaryPhaseSucceeded, idleAt("rev1")),
			wantRun: &CheckRequest{Gate: serinv1.ConfirmRolloutHook},
		},
		{
			name: "a closed confirm-rollout gate waits", spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev1")), checks: gatesClosed,
			wantPhase: serinv1.CanaryPhaseWaiting, wantApplied: "rev1", wantEvents: "WaitingForApproval", wantRequeue: time.Minute,
		},
		{
			name: "an open confirm-rollout gate starts", spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev1")), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantApplied: "rev2", wantActions: "ScaleCanaryUp SetTraffic(0)",
			wantEvents: "NewRevision", wantRequeue: time.Minute,
		},
		{
			name: "skipAnalysis promotes without checks", spec: canarySpec(func(s *serinv1.CanarySpec) { s.SkipAnalysis = true }, metric),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev1")), wantPhase: serinv1.CanaryPhasePromoting,
			wantApplied: "rev2", wantEvents: "SkippedAnalysis", wantRequeue: time.Millisecond,
		},

		// Waiting for confirm-rollout.
		{
			name: "waiting asks the gate again only when due", spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseWaiting, idleAt("rev1")), wantPhase: serinv1.CanaryPhaseWaiting, wantRequeue: 30 * time.Second,
		},
		{
			name: "waiting asks the gate when due", spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseWaiting, idleAt("rev1"), due), wantRun: &CheckRequest{Gate: serinv1.ConfirmRolloutHook},
		},
		{
			name: "an opened gate ends waiting", spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseWaiting, idleAt("rev1"), due), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantApplied: "rev2", wantActions: "ScaleCanaryUp SetTraffic(0)",
			wantEvents: "NewRevision", wantRequeue: time.Minute,
		},
		{
			name: "waiting ends when the target is reverted", spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseWaiting, idleAt("rev1")), rev: "rev1",
			wantPhase: serinv1.CanaryPhaseSucceeded, wantActions: "SetTraffic(0) ScaleCanaryDown", wantEvents: "RevertedToPromoted",
		},

		// Canary analysis.
		{
			name: "a canary that is not ready holds the analysis", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, due), canary: &Workload{Exists: true, Message: "1 of 2 pods ready"},
			wantPhase: serinv1.CanaryPhaseProgressing, wantRequeue: 3 * time.Minute,
		},
		{
			name: "a canary not ready past the deadline rolls back", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), func(s *serinv1.CanaryStatus) {
				s.LastTransitionTime, s.LastIterationTime = at(time.Minute), at(4*time.Minute)
			}),
			canary:    &Workload{Exists: true, Message: "0 of 2 pods ready"},
			wantPhase: serinv1.CanaryPhaseFailed, wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "!RolledBack",
		},
		{
			name: "a primary not ready holds the analysis", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, due), primary: &Workload{Exists: true},
			wantPhase: serinv1.CanaryPhaseProgressing, wantRequeue: 3 * time.Minute,
		},
		{
			name: "nothing happens before the interval", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, weight(20)), wantPhase: serinv1.CanaryPhaseProgressing,
			wantWeight: 20, wantRequeue: 30 * time.Second,
		},
		{
			name: "the first step runs the pre-rollout checks", spec: canarySpec(hook(serinv1.PreRolloutHook), metric),
			status: status(serinv1.CanaryPhaseProgressing, due), wantRun: &CheckRequest{PreRollout: true},
		},
		{
			name: "passing pre-rollout checks shift the first step", spec: canarySpec(hook(serinv1.PreRolloutHook), metric),
			status: status(serinv1.CanaryPhaseProgressing, due), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantActions: "SetTraffic(20)",
			wantEvents: "Advanced", wantRequeue: time.Minute,
		},
		{
			name: "a failed pre-rollout check counts and sends no traffic", spec: canarySpec(hook(serinv1.PreRolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due), checks: observe(code(serinv1.PreRolloutHook, 500)),
			wantPhase: serinv1.CanaryPhaseProgressing, wantFailed: 1, wantEvents: "!ChecksFailed", wantRequeue: time.Minute,
		},
		{
			name: "failed checks reaching the threshold roll back", spec: canarySpec(hook(serinv1.PreRolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, failed(1)), checks: observe(code(serinv1.PreRolloutHook, 500)),
			wantPhase: serinv1.CanaryPhaseFailed, wantFailed: 2,
			wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "!ChecksFailed !RolledBack",
		},
		{
			name: "each failed check counts", spec: canarySpec(hook(serinv1.RolloutHook), metric, func(s *serinv1.CanarySpec) { s.Analysis.Threshold = 5 }),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: observe(code(serinv1.RolloutHook, 500), measured(MetricObservation{Value: 90})),
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantFailed: 2, wantEvents: "!MetricFailed !ChecksFailed", wantRequeue: time.Minute,
		},
		{
			name: "failed checks at the threshold roll back before running more", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), failed(2)), wantPhase: serinv1.CanaryPhaseFailed, wantFailed: 2,
			wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "!RolledBack",
		},
		{
			name: "later steps run the analysis checks", spec: canarySpec(hook(serinv1.PreRolloutHook), hook(serinv1.RollbackHook), metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), wantRun: &CheckRequest{Analysis: true, Rollback: true},
		},
		{
			name: "passing checks advance the weight", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 40, wantIter: 2, wantActions: "SetTraffic(40)", wantEvents: "MetricPassed Advanced", wantRequeue: time.Minute,
		},
		{
			name: "stepWeights advance to the next listed weight", spec: canarySpec(metric, func(s *serinv1.CanarySpec) { s.Analysis.StepWeight, s.Analysis.StepWeights = 0, []int{5, 10, 50} }),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(5), iterations(1)), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 10, wantIter: 2, wantActions: "SetTraffic(10)", wantEvents: "MetricPassed Advanced", wantRequeue: time.Minute,
		},
		{
			name: "a canary release with mirror mirrors in its first step", spec: canarySpec(metric, mirrored),
			status:    status(serinv1.CanaryPhaseProgressing, due),
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 0, wantIter: 1, wantActions: "SetTraffic(0,mirror=50)", wantEvents: "Advanced", wantRequeue: time.Minute,
		},
		{
			name: "after the mirror step the weight shifts, without mirroring", spec: canarySpec(metric, mirrored),
			status: status(serinv1.CanaryPhaseProgressing, due, iterations(1), func(s *serinv1.CanaryStatus) { s.AnalysisRouted = true }), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 2, wantActions: "SetTraffic(20)", wantEvents: "MetricPassed Advanced", wantRequeue: time.Minute,
		},
		{
			name: "later steps of a mirrored canary release do not mirror", spec: canarySpec(metric, mirrored),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(2), func(s *serinv1.CanaryStatus) { s.AnalysisRouted = true }), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 40, wantIter: 3, wantActions: "SetTraffic(40)", wantEvents: "MetricPassed Advanced", wantRequeue: time.Minute,
		},
		{
			name: "a closed confirm-traffic-increase gate holds the weight", spec: canarySpec(metric, hook(serinv1.ConfirmTrafficIncreaseHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: gatesClosed,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantEvents: "MetricPassed WaitingForApproval", wantRequeue: time.Minute,
		},
		{
			name: "a gate still closed at the next interval holds without announcing it again", spec: canarySpec(metric, hook(serinv1.ConfirmTrafficIncreaseHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1), func(s *serinv1.CanaryStatus) {
				s.History = []serinv1.DecisionRecord{{Revision: "rev2", Phase: serinv1.CanaryPhaseProgressing, Weight: 20, Iteration: 1, Checks: "error-rate=0.1 confirm-traffic-increase=closed", Action: "hold"}}
			}), checks: gatesClosed,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantEvents: "MetricPassed", wantRequeue: time.Minute,
		},
		{
			name: "the gate of the next step is asked with the checks", spec: canarySpec(metric, hook(serinv1.ConfirmTrafficIncreaseHook)),
			status:  status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)),
			wantRun: &CheckRequest{Gate: serinv1.ConfirmTrafficIncreaseHook, Analysis: true},
		},
		{
			name: "a rollback webhook rolls back", spec: canarySpec(metric, hook(serinv1.RollbackHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: rollbackAsked,
			wantPhase: serinv1.CanaryPhaseFailed, wantIter: 1, wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "MetricPassed !RolledBack",
		},
		{
			name: "passing checks at maxWeight promote", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(40), iterations(2)), checks: passing,
			wantPhase: serinv1.CanaryPhasePromoting, wantWeight: 40, wantIter: 2, wantEvents: "MetricPassed Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "confirm-promotion is asked at maxWeight", spec: canarySpec(metric, hook(serinv1.ConfirmPromotionHook)),
			status:  status(serinv1.CanaryPhaseProgressing, due, weight(40), iterations(2)),
			wantRun: &CheckRequest{Gate: serinv1.ConfirmPromotionHook, Analysis: true},
		},
		{
			name: "a closed confirm-promotion gate waits for promotion", spec: canarySpec(metric, hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(40), iterations(2)), checks: gatesClosed,
			wantPhase: serinv1.CanaryPhaseWaitingPromotion, wantWeight: 40, wantIter: 2, wantEvents: "MetricPassed WaitingForPromotion", wantRequeue: time.Minute,
		},
		{
			name: "a new revision mid-analysis restarts from step 0", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, weight(40), iterations(2), failed(1)), rev: "rev3",
			wantPhase: serinv1.CanaryPhaseProgressing, wantApplied: "rev3",
			wantActions: "SetTraffic(0) ScaleCanaryUp", wantEvents: "AnalysisRestarted", wantRequeue: time.Minute,
		},
		{
			name: "reverting the target mid-analysis ends it", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1)), rev: "rev1",
			wantPhase: serinv1.CanaryPhaseSucceeded, wantIter: 1, wantApplied: "rev1", wantActions: "SetTraffic(0) ScaleCanaryDown", wantEvents: "RevertedToPromoted",
		},

		// No data, no answer: no verdict, so the step holds.
		{
			name: "no data holds the weight and counts no failure", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: noData,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantEvents: "!MetricNoData !NoVerdict", wantRequeue: time.Minute,
		},
		{
			name: "a query error holds the weight", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: queryError,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantEvents: "!MetricError !NoVerdict", wantRequeue: time.Minute,
		},
		{
			name: "no data holds a blue/green iteration", spec: canarySpec(blueGreen(3), metric),
			status: status(serinv1.CanaryPhaseProgressing, due, iterations(1)), checks: noData,
			wantPhase: serinv1.CanaryPhaseProgressing, wantIter: 1, wantEvents: "!MetricNoData !NoVerdict", wantRequeue: time.Minute,
		},
		{
			name: "no data at maxWeight does not promote", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(40), iterations(2)), checks: noData,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 40, wantIter: 2, wantEvents: "!MetricNoData !NoVerdict", wantRequeue: time.Minute,
		},
		{
			name: "the third interval in a row without data is one failed check", spec: canarySpec(metric, func(s *serinv1.CanarySpec) { s.Analysis.Threshold = 5 }),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1), streak(serinv1.MetricRequestSuccessRate, 2)), checks: noData,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantFailed: 1, wantEvents: "!MetricNoData !ChecksFailed", wantRequeue: time.Minute,
		},
		{
			name: "a metric's own consecutiveErrorLimit of 1 counts the first no-data interval", spec: canarySpec(metric, func(s *serinv1.CanarySpec) {
				s.Analysis.Threshold, s.Analysis.Metrics[0].ConsecutiveErrorLimit, s.Analysis.ConsecutiveErrorLimit = 5, new(1), new(4)
			}),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: noData,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantFailed: 1, wantEvents: "!MetricNoData !ChecksFailed", wantRequeue: time.Minute,
		},
		{
			name: "the analysis' consecutiveErrorLimit applies to metrics without their own", spec: canarySpec(metric, func(s *serinv1.CanarySpec) {
				s.Analysis.Threshold, s.Analysis.ConsecutiveErrorLimit = 5, new(5)
			}),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1), streak(serinv1.MetricRequestSuccessRate, 2)), checks: noData,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantEvents: "!MetricNoData !NoVerdict", wantRequeue: time.Minute,
		},
		{
			name: "a rollout webhook without an answer holds the weight", spec: canarySpec(hook(serinv1.RolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: observe(unanswered(serinv1.RolloutHook)),
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantEvents: "!NoVerdict", wantRequeue: time.Minute,
		},
		{
			name: "a rollout webhook answering 500 is a failed check", spec: canarySpec(hook(serinv1.RolloutHook), func(s *serinv1.CanarySpec) { s.Analysis.Threshold = 5 }),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: observe(code(serinv1.RolloutHook, 500)),
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantFailed: 1, wantEvents: "!ChecksFailed", wantRequeue: time.Minute,
		},
		{
			name: "a pre-rollout webhook without an answer sends no traffic", spec: canarySpec(hook(serinv1.PreRolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due), checks: observe(unanswered(serinv1.PreRolloutHook)),
			wantPhase: serinv1.CanaryPhaseProgressing, wantEvents: "!NoVerdict", wantRequeue: time.Minute,
		},
		{
			name: "an unanswered confirm-traffic-increase gate stays closed", spec: canarySpec(hook(serinv1.ConfirmTrafficIncreaseHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), checks: observe(unanswered(serinv1.ConfirmTrafficIncreaseHook)),
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantEvents: "WaitingForApproval", wantRequeue: time.Minute,
		},
		{
			name: "no verdict for as long as the progress deadline rolls back", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1), inconclusiveSince(4*time.Minute)), checks: noData,
			wantPhase: serinv1.CanaryPhaseFailed, wantIter: 1,
			wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "!MetricNoData !RolledBack",
		},
		{
			name: "a verdict ends a run without one", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1), inconclusiveSince(6*time.Minute)), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 40, wantIter: 2, wantActions: "SetTraffic(40)", wantEvents: "MetricPassed Advanced", wantRequeue: time.Minute,
		},
		{
			name: "98 against min 99, the third failure at threshold 3, rolls back", spec: canarySpec(metric, func(s *serinv1.CanarySpec) { s.Analysis.Threshold = 3 }),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1), failed(2)), checks: observe(measured(MetricObservation{Value: 98})),
			wantPhase: serinv1.CanaryPhaseFailed, wantIter: 1, wantFailed: 3,
			wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "!MetricFailed !ChecksFailed !RolledBack",
		},

		// skipAnalysis set during an analysis.
		{
			name: "skipAnalysis set while progressing promotes at once", spec: canarySpec(metric, func(s *serinv1.CanarySpec) { s.SkipAnalysis = true }),
			status:    status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1)),
			wantPhase: serinv1.CanaryPhasePromoting, wantWeight: 20, wantIter: 1, wantEvents: "SkippedAnalysis Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "skipAnalysis set while waiting for promotion promotes at once", spec: canarySpec(hook(serinv1.ConfirmPromotionHook), func(s *serinv1.CanarySpec) { s.SkipAnalysis = true }),
			status:    status(serinv1.CanaryPhaseWaitingPromotion, weight(40)),
			wantPhase: serinv1.CanaryPhasePromoting, wantWeight: 40, wantEvents: "SkippedAnalysis Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "skipAnalysis set while a blue/green release is analysed promotes and keeps traffic on the primary until the copy", spec: canarySpec(blueGreen(3), func(s *serinv1.CanarySpec) { s.SkipAnalysis = true }),
			status:    status(serinv1.CanaryPhaseProgressing, iterations(1)),
			wantPhase: serinv1.CanaryPhasePromoting, wantIter: 1, wantEvents: "SkippedAnalysis Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "skipAnalysis set while waiting for confirm-rollout promotes", spec: canarySpec(hook(serinv1.ConfirmRolloutHook), func(s *serinv1.CanarySpec) { s.SkipAnalysis = true }),
			status:    status(serinv1.CanaryPhaseWaiting, idleAt("rev1")),
			wantPhase: serinv1.CanaryPhasePromoting, wantApplied: "rev2", wantEvents: "SkippedAnalysis", wantRequeue: time.Millisecond,
		},

		// Blue/green and A/B testing.
		{
			name: "the first blue/green iteration runs pre-rollout and analysis", spec: canarySpec(blueGreen(3), hook(serinv1.PreRolloutHook), hook(serinv1.RolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due), wantRun: &CheckRequest{PreRollout: true, Analysis: true},
		},
		{
			name: "a passing blue/green iteration counts and sends no traffic", spec: canarySpec(blueGreen(3), hook(serinv1.RolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantIter: 1, wantEvents: "Advanced", wantRequeue: time.Minute,
		},
		{
			name: "later blue/green iterations skip pre-rollout", spec: canarySpec(blueGreen(3), hook(serinv1.PreRolloutHook), hook(serinv1.RolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, iterations(1)), wantRun: &CheckRequest{Analysis: true},
		},
		{
			name: "a failing blue/green iteration does not count", spec: canarySpec(blueGreen(3), hook(serinv1.RolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, iterations(1)), checks: observe(code(serinv1.RolloutHook, 503)),
			wantPhase: serinv1.CanaryPhaseProgressing, wantIter: 1, wantFailed: 1, wantEvents: "!ChecksFailed", wantRequeue: time.Minute,
		},
		{
			name: "blue/green promotes after the last iteration", spec: canarySpec(blueGreen(3), hook(serinv1.RolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, iterations(3)), wantPhase: serinv1.CanaryPhasePromoting, wantIter: 3,
			wantEvents: "Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "the last blue/green iteration asks confirm-promotion with its checks", spec: canarySpec(blueGreen(3), hook(serinv1.RolloutHook), hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, iterations(2)), wantRun: &CheckRequest{Analysis: true, Gate: serinv1.ConfirmPromotionHook},
		},
		{
			name: "a passing last blue/green iteration promotes at once", spec: canarySpec(blueGreen(3), hook(serinv1.RolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, iterations(2)), checks: passing,
			wantPhase: serinv1.CanaryPhasePromoting, wantIter: 3,
			wantEvents: "Advanced Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "a passing last blue/green iteration behind a closed gate waits for promotion", spec: canarySpec(blueGreen(3), hook(serinv1.RolloutHook), hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, iterations(2)), checks: gatesClosed,
			wantPhase: serinv1.CanaryPhaseWaitingPromotion, wantIter: 3, wantEvents: "Advanced WaitingForPromotion", wantRequeue: time.Minute,
		},
		{
			name: "blue/green with mirroring mirrors before the first iteration", spec: canarySpec(blueGreen(3), func(s *serinv1.CanarySpec) { s.Analysis.Mirror = true }),
			status: status(serinv1.CanaryPhaseProgressing, due), wantPhase: serinv1.CanaryPhaseProgressing,
			wantActions: "SetTraffic(0,mirror=100)", wantEvents: "Advanced", wantRequeue: time.Minute,
		},
		{
			name: "A/B testing routes matching requests to the canary before the first iteration", spec: canarySpec(blueGreen(3), abTesting, metric),
			status: status(serinv1.CanaryPhaseProgressing, due), wantPhase: serinv1.CanaryPhaseProgressing,
			wantActions: "SetTraffic(0,match)", wantEvents: "Advanced", wantRequeue: time.Minute,
		},
		{
			name: "the A/B routing step runs the pre-rollout checks only", spec: canarySpec(blueGreen(3), abTesting, metric, hook(serinv1.PreRolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due), wantRun: &CheckRequest{PreRollout: true},
		},
		{
			name: "a failed pre-rollout check sends no matching requests to the canary", spec: canarySpec(blueGreen(3), abTesting, hook(serinv1.PreRolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due), checks: observe(code(serinv1.PreRolloutHook, 500)),
			wantPhase: serinv1.CanaryPhaseProgressing, wantFailed: 1, wantEvents: "!ChecksFailed", wantRequeue: time.Minute,
		},
		{
			name: "the first A/B iteration judges the routed traffic", spec: canarySpec(blueGreen(3), abTesting, metric, hook(serinv1.PreRolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, due, func(s *serinv1.CanaryStatus) { s.AnalysisRouted = true }), wantRun: &CheckRequest{Analysis: true},
		},
		{
			name: "a passing first A/B iteration counts", spec: canarySpec(blueGreen(3), abTesting, metric),
			status: status(serinv1.CanaryPhaseProgressing, due, func(s *serinv1.CanaryStatus) { s.AnalysisRouted = true }), checks: passing,
			wantPhase: serinv1.CanaryPhaseProgressing, wantIter: 1, wantEvents: "MetricPassed Advanced", wantRequeue: time.Minute,
		},

		// Waiting for promotion.
		{
			name: "an opened confirm-promotion gate promotes", spec: canarySpec(hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseWaitingPromotion, due, weight(40)), checks: passing,
			wantPhase: serinv1.CanaryPhasePromoting, wantWeight: 40, wantEvents: "Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "a closed confirm-promotion gate keeps waiting", spec: canarySpec(hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseWaitingPromotion, due, weight(40)), checks: gatesClosed,
			wantPhase: serinv1.CanaryPhaseWaitingPromotion, wantWeight: 40, wantRequeue: time.Minute,
		},
		{
			name: "a new revision while waiting for promotion restarts", spec: canarySpec(hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseWaitingPromotion, weight(40)), rev: "rev3", wantPhase: serinv1.CanaryPhaseProgressing, wantApplied: "rev3",
			wantActions: "SetTraffic(0) ScaleCanaryUp", wantEvents: "AnalysisRestarted", wantRequeue: time.Minute,
		},

		// Promotion.
		{
			name: "promoting copies the analysed revision into the primary", spec: canarySpec(),
			status:    status(serinv1.CanaryPhasePromoting, weight(40)),
			wantPhase: serinv1.CanaryPhasePromoting, wantWeight: 40, wantActions: "PromotePrimary(rev2)", wantRequeue: 4*time.Minute + 30*time.Second,
		},
		{
			name: "a blue/green copy sends all traffic to the tested canary first", spec: canarySpec(blueGreen(3)),
			status:    status(serinv1.CanaryPhasePromoting, iterations(3)),
			wantPhase: serinv1.CanaryPhasePromoting, wantWeight: 100, wantIter: 3, wantActions: "SetTraffic(100) PromotePrimary(rev2)", wantRequeue: 4*time.Minute + 30*time.Second,
		},
		{
			name: "a target changed before the copy restarts the analysis of the new revision", spec: canarySpec(),
			status: status(serinv1.CanaryPhasePromoting, weight(40)), rev: "rev3",
			wantPhase: serinv1.CanaryPhaseProgressing, wantApplied: "rev3", wantPromo: "rev1",
			wantActions: "SetTraffic(0) ScaleCanaryUp", wantEvents: "AnalysisRestarted", wantRequeue: time.Minute,
		},
		{
			name: "a primary that does not take the revision within the deadline rolls back", spec: canarySpec(),
			status: status(serinv1.CanaryPhasePromoting, weight(40), func(s *serinv1.CanaryStatus) {
				s.LastTransitionTime, s.LastIterationTime = at(time.Minute), at(time.Minute)
			}),
			wantPhase: serinv1.CanaryPhaseFailed, wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "!RolledBack",
		},
		{
			name: "promoting waits for the primary rollout", spec: canarySpec(),
			status: status(serinv1.CanaryPhasePromoting, weight(40)), primary: &Workload{Exists: true, Revision: "rev2"},
			wantPhase: serinv1.CanaryPhasePromoting, wantWeight: 40, wantRequeue: 4*time.Minute + 30*time.Second,
		},
		{
			name: "a primary that does not roll out within the deadline rolls back", spec: canarySpec(),
			status: status(serinv1.CanaryPhasePromoting, weight(40), func(s *serinv1.CanaryStatus) {
				s.LastTransitionTime, s.LastIterationTime = at(time.Minute), at(2*time.Minute)
			}),
			primary: &Workload{Exists: true, Message: "1 of 3 updated", Revision: "rev2"}, wantPhase: serinv1.CanaryPhaseFailed,
			wantActions: "SetTraffic(0) RestorePrimary(rev1) ScaleCanaryDown RunPostRollout", wantEvents: "!RolledBack",
		},
		{
			name: "a rolled out primary gets all traffic back", spec: canarySpec(),
			status: status(serinv1.CanaryPhasePromoting, weight(40)), wantPhase: serinv1.CanaryPhaseFinalising, primary: &copied,
			wantActions: "SetTraffic(0)", wantEvents: "Finalising", wantRequeue: time.Second,
		},
		{
			name: "stepWeightPromotion returns traffic in steps", spec: canarySpec(func(s *serinv1.CanarySpec) { s.Analysis.StepWeightPromotion = 15 }),
			status: status(serinv1.CanaryPhasePromoting, due, weight(40)), wantPhase: serinv1.CanaryPhasePromoting, wantWeight: 25, primary: &copied,
			wantActions: "SetTraffic(25)", wantEvents: "Promoting", wantRequeue: time.Minute,
		},
		{
			name: "stepWeightPromotion waits for the interval", spec: canarySpec(func(s *serinv1.CanarySpec) { s.Analysis.StepWeightPromotion = 15 }),
			status: status(serinv1.CanaryPhasePromoting, weight(25)), wantPhase: serinv1.CanaryPhasePromoting, wantWeight: 25, wantRequeue: 30 * time.Second, primary: &copied,
		},
		{
			name: "the last promotion step finalises", spec: canarySpec(func(s *serinv1.CanarySpec) { s.Analysis.StepWeightPromotion = 15 }),
			status: status(serinv1.CanaryPhasePromoting, due, weight(10)), wantPhase: serinv1.CanaryPhaseFinalising, primary: &copied,
			wantActions: "SetTraffic(0)", wantEvents: "Finalising", wantRequeue: time.Second,
		},
		{
			name: "a new revision during promotion waits", spec: canarySpec(),
			status: status(serinv1.CanaryPhasePromoting, weight(40)), rev: "rev3", wantPhase: serinv1.CanaryPhaseFinalising, wantApplied: "rev2", primary: &copied,
			wantActions: "SetTraffic(0)", wantEvents: "Finalising", wantRequeue: time.Second,
		},
		{
			name: "finalising scales the canary down and succeeds", spec: canarySpec(),
			status:    status(serinv1.CanaryPhaseFinalising, iterations(2)),
			wantPhase: serinv1.CanaryPhaseSucceeded, wantIter: 2, wantPromo: "rev2",
			wantActions: "ScaleCanaryDown RunPostRollout", wantEvents: "Succeeded",
		},
		{
			name: "a revision that waited during promotion is picked up after success", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFinalising), rev: "rev3", wantPhase: serinv1.CanaryPhaseSucceeded, wantApplied: "rev2", wantPromo: "rev2",
			wantActions: "ScaleCanaryDown RunPostRollout", wantEvents: "Succeeded", wantRequeue: time.Second,
		},

		// Suspend.
		{
			name: "suspend freezes a due step", spec: canarySpec(metric, func(s *serinv1.CanarySpec) { s.Suspend = true }),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), rev: "rev3",
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantApplied: "rev2",
		},
		{
			name: "resuming continues where it stopped", spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), wantRun: &CheckRequest{Analysis: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Spec: tt.spec, Status: tt.status, Now: t0.Add(now), Revision: "rev2", Primary: ready, Canary: ready}
			if tt.rev != "" {
				in.Revision = tt.rev
			}
			// The primary runs the promoted revision unless the row says
			// otherwise.
			in.Primary.Revision = tt.status.LastPromotedSpec
			if tt.primary != nil {
				in.Primary = *tt.primary
			}
			if tt.canary != nil {
				in.Canary = *tt.canary
			}
			before := *in.Status.DeepCopy()
			got := decideLikeTheReconciler(in, tt.checks)
			if !reflect.DeepEqual(in.Status, before) {
				t.Fatal("Decide changed its input status")
			}
			if tt.wantRun != nil || got.Run != nil {
				if got.Run == nil || tt.wantRun == nil || *got.Run != *tt.wantRun {
					t.Fatalf("Run = %+v, want %+v", got.Run, tt.wantRun)
				}
				if got.Actions != nil || got.Events != nil {
					t.Errorf("a Run decision has actions %v or events %v", got.Actions, got.Events)
				}
				return
			}
			s := got.Status
			if s.Phase != tt.wantPhase {
				t.Errorf("phase %s, want %s", s.Phase, tt.wantPhase)
			}
			if s.CanaryWeight != tt.wantWeight || s.Iterations != tt.wantIter || s.FailedChecks != tt.wantFailed {
				t.Errorf("weight/iterations/failedChecks = %d/%d/%d, want %d/%d/%d",
					s.CanaryWeight, s.Iterations, s.FailedChecks, tt.wantWeight, tt.wantIter, tt.wantFailed)
			}
			if tt.wantApplied != "" && s.LastAppliedSpec != tt.wantApplied {
				t.Errorf("lastAppliedSpec %s, want %s", s.LastAppliedSpec, tt.wantApplied)
			}
			if tt.wantPromo != "" && s.LastPromotedSpec != tt.wantPromo {
				t.Errorf("lastPromotedSpec %s, want %s", s.LastPromotedSpec, tt.wantPromo)
			}
			if a := formatActions(got.Actions); a != tt.wantActions {
				t.Errorf("actions %q, want %q", a, tt.wantActions)
			}
			if e := formatEvents(got.Events); e != tt.wantEvents {
				t.Errorf("events %q, want %q", e, tt.wantEvents)
			}
			if got.RequeueAfter != tt.wantRequeue {
				t.Errorf("requeue %s, want %s", got.RequeueAfter, tt.wantRequeue)
			}
			if s.Phase != before.Phase && !s.LastTransitionTime.Equal(&metav1.Time{Time: in.Now}) {
				t.Errorf("phase changed but lastTransitionTime is %s", s.LastTransitionTime)
			}
		})
	}
}

// formatActions lists the actions but EnsureServices, which
// TestDecideEnsuresServices covers.
func formatActions(actions []Action) string {
	return FormatActions(slices.DeleteFunc(slices.Clone(actions), func(a Action) bool { return a.Kind == EnsureServices }))
}

// TestDecideEnsuresServices: the Services are applied in every decision
// once the primary serves, never before, and first.
func TestDecideEnsuresServices(t *testing.T) {
	for _, tt := range []struct {
		name    string
		status  serinv1.CanaryStatus
		primary Workload
		want    bool
	}{
		{"a new Canary whose primary is not ready yet", serinv1.CanaryStatus{}, Workload{Exists: true}, false},
		{"the primary is ready at initialisation", serinv1.CanaryStatus{Phase: serinv1.CanaryPhaseInitializing}, ready, true},
		{"an initialised Canary", status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), ready, true},
		{"an initialised Canary whose primary is rolling out", status(serinv1.CanaryPhasePromoting), Workload{Exists: true, Revision: "rev2"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(Input{Spec: canarySpec(), Status: tt.status, Now: t0.Add(now), Revision: "rev2", Primary: tt.primary, Canary: ready})
			got := len(d.Actions) > 0 && d.Actions[0].Kind == EnsureServices
			if got != tt.want || slices.ContainsFunc(d.Actions[min(1, len(d.Actions)):], func(a Action) bool { return a.Kind == EnsureServices }) {
				t.Errorf("actions %s, want EnsureServices first: %v", FormatActions(d.Actions), tt.want)
			}
		})
	}
}

// formatEvents lists event reasons; warnings are prefixed with !.
func formatEvents(events []Event) string {
	var parts []string
	for _, e := range events {
		if e.Warning {
			parts = append(parts, "!"+e.Reason)
		} else {
			parts = append(parts, e.Reason)
		}
	}
	return strings.Join(parts, " ")
}

// TestFirstStepTiming checks when the first step of each strategy is
// due: a weight step judges only pre-rollout checks, so it comes as soon as
// the canary is ready; an iteration judges traffic, so it comes an interval
// after the start.
func TestFirstStepTiming(t *testing.T) {
	for _, tt := range []struct {
		name       string
		spec       serinv1.CanarySpec
		wantWeight int
		wantWait   time.Duration
	}{
		{name: "stepWeight", spec: canarySpec(), wantWeight: 20},
		{name: "blue/green", spec: canarySpec(blueGreen(3)), wantWait: time.Minute - 5*time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			started := Decide(Input{
				Spec: tt.spec, Status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev1")), Now: t0.Add(now),
				Revision: "rev2", Primary: ready, Canary: Workload{Exists: true},
			})
			if started.Status.Phase != serinv1.CanaryPhaseProgressing {
				t.Fatalf("phase %s after the new revision, want Progressing", started.Status.Phase)
			}
			// The canary is ready 5s later.
			next := Decide(Input{Spec: tt.spec, Status: started.Status, Now: t0.Add(now + 5*time.Second), Revision: "rev2", Primary: ready, Canary: ready})
			if next.Run != nil {
				t.Fatalf("asked for checks %+v", *next.Run)
			}
			if next.Status.CanaryWeight != tt.wantWeight || next.RequeueAfter != tt.wantWait && tt.wantWait > 0 {
				t.Errorf("5s after the start with a ready canary: weight %d, requeue %v; want weight %d, requeue %v",
					next.Status.CanaryWeight, next.RequeueAfter, tt.wantWeight, tt.wantWait)
			}
		})
	}
}

func TestDecideRecordsMetrics(t *testing.T) {
	in := Input{
		Spec: canarySpec(metric), Status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)),
		Now: t0.Add(now), Revision: "rev2", Primary: ready, Canary: ready,
	}
	got := decideLikeTheReconciler(in, observe(measured(MetricObservation{Value: 99.5})))
	want := []serinv1.MetricStatus{{
		Name: serinv1.MetricRequestSuccessRate, Verdict: serinv1.MetricPassed, Value: new(99.5),
		Message: "99.5 is within bounds", Time: metav1.NewTime(in.Now),
	}}
	if !reflect.DeepEqual(got.Status.Metrics, want) {
		t.Errorf("metrics %+v, want %+v", got.Status.Metrics, want)
	}

	// A new release starts with no measurements.
	in.Status = got.Status
	in.Revision, in.Checks = "rev3", nil
	if restarted := Decide(in); restarted.Status.Metrics != nil {
		t.Errorf("a new revision kept the metrics %+v", restarted.Status.Metrics)
	}
}

func TestDecideCapsWeightToReadyCanaryPods(t *testing.T) {
	tests := []struct {
		name        string
		ready       int32
		wantWeight  int
		wantCap     int
		wantActions string
		wantEvents  string
	}{
		{"all pods ready: no cap", 4, 40, 0, "SetTraffic(40)", "MetricPassed Advanced"},
		{"3 of 4 ready: 3/4 of the step", 3, 30, 40, "SetTraffic(30)", "MetricPassed WeightCapped"},
		{"1 of 4 ready: the weight holds", 1, 20, 40, "", "MetricPassed WeightCapped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{
				Spec: canarySpec(metric), Status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)),
				Now: t0.Add(now), Revision: "rev2", Primary: ready,
				Canary: Workload{Exists: true, Ready: true, Pods: 4, ReadyPods: tt.ready},
			}
			got := decideLikeTheReconciler(in, passing)
			if got.Status.CanaryWeight != tt.wantWeight || got.Status.CanaryWeightCap != tt.wantCap {
				t.Errorf("weight %d cap %d, want %d %d", got.Status.CanaryWeight, got.Status.CanaryWeightCap, tt.wantWeight, tt.wantCap)
			}
			if a := formatActions(got.Actions); a != tt.wantActions {
				t.Errorf("actions %q, want %q", a, tt.wantActions)
			}
			if e := formatEvents(got.Events); e != tt.wantEvents {
				t.Errorf("events %q, want %q", e, tt.wantEvents)
			}
		})
	}
}

// TestIntervalUnder10s: an interval under 10s runs at 10s, as in Flagger,
// and each initialisation and release says so in a Warning.
func TestIntervalUnder10s(t *testing.T) {
	spec := canarySpec(func(s *serinv1.CanarySpec) { s.Analysis.Interval = "5s" })
	if got := Interval(spec); got != MinInterval {
		t.Errorf("Interval = %v, want %v", got, MinInterval)
	}
	if got := Interval(canarySpec()); got != time.Minute {
		t.Errorf("Interval of 1m = %v", got)
	}
	clamped := func(d Decision) bool {
		return slices.ContainsFunc(d.Events, func(e Event) bool { return e.Warning && e.Reason == ReasonIntervalClamped })
	}
	initializing := Decide(Input{Spec: spec, Now: t0.Add(now), Revision: "rev1"})
	if !clamped(initializing) {
		t.Errorf("initialisation events %+v, want an %s Warning", initializing.Events, ReasonIntervalClamped)
	}
	started := Decide(Input{
		Spec: spec, Status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev1")), Now: t0.Add(now),
		Revision: "rev2", Primary: ready, Canary: Workload{Exists: true},
	})
	if !clamped(started) {
		t.Errorf("new revision events %+v, want an %s Warning", started.Events, ReasonIntervalClamped)
	}
	next := Decide(Input{Spec: spec, Status: started.Status, Now: t0.Add(now + 5*time.Second), Revision: "rev2", Primary: ready, Canary: ready})
	if clamped(next) {
		t.Errorf("a step warned again: %+v", next.Events)
	}
	if normal := Decide(Input{Spec: canarySpec(), Now: t0.Add(now), Revision: "rev1"}); clamped(normal) {
		t.Errorf("a 1m interval warned: %+v", normal.Events)
	}
}

// TestTargetScaledUpWhileIdle: a target scaled up while no release runs
// (a GitOps tool re-applying spec.replicas from Git) is scaled back to
// zero with a Warning that names the field manager and the fix; a target
// that holds a new revision starts a release instead.
func TestTargetScaledUpWhileIdle(t *testing.T) {
	scaled := Workload{Exists: true, Ready: true, Pods: 3, ReadyPods: 3, ScaledUp: true, ScaledBy: "kustomize-controller"}
	for _, phase := range []serinv1.CanaryPhase{serinv1.CanaryPhaseInitialized, serinv1.CanaryPhaseSucceeded, serinv1.CanaryPhaseFailed} {
		st := status(phase, idleAt("rev2"))
		d := Decide(Input{Spec: canarySpec(), Status: st, Now: t0.Add(now), Revision: "rev2", Primary: ready, Canary: scaled})
		if !slices.ContainsFunc(d.Actions, func(a Action) bool { return a.Kind == ScaleTargetToZero }) {
			t.Errorf("%s: actions %+v, want ScaleTargetToZero", phase, d.Actions)
		}
		if len(d.Events) != 1 || !d.Events[0].Warning || d.Events[0].Reason != ReasonTargetScaledUp ||
			!strings.Contains(d.Events[0].Message, "kustomize-controller") || !strings.Contains(d.Events[0].Message, "ignoreDifferences") {
			t.Errorf("%s: events %+v", phase, d.Events)
		}
		if d.Status.Phase != phase {
			t.Errorf("%s: phase became %s", phase, d.Status.Phase)
		}
	}
	idle := Decide(Input{Spec: canarySpec(), Status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), Now: t0.Add(now), Revision: "rev2", Primary: ready, Canary: Workload{Exists: true}})
	if slices.ContainsFunc(idle.Actions, func(a Action) bool { return a.Kind == ScaleTargetToZero }) || len(idle.Events) != 0 {
		t.Errorf("a target at zero: actions %+v, events %+v", idle.Actions, idle.Events)
	}
	release := Decide(Input{Spec: canarySpec(), Status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), Now: t0.Add(now), Revision: "rev3", Primary: ready, Canary: scaled})
	if release.Status.Phase != serinv1.CanaryPhaseProgressing {
		t.Errorf("a new revision scaled up: phase %s, want Progressing", release.Status.Phase)
	}
}
