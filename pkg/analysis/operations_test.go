package analysis

import (
	"strings"
	"testing"
	"time"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

func paused(s *serinv1.CanaryStatus) { s.Paused = true }

func TestDecideOperations(t *testing.T) {
	const (
		promote     = OperationPromote
		promoteFull = OperationPromoteFull
		abort       = OperationAbort
		retry       = OperationRetry
		pause       = OperationPause
		resume      = OperationResume
		undo        = OperationUndo
	)
	tests := []struct {
		name     string
		op       OperationKind
		revision string // of an undo
		spec     serinv1.CanarySpec
		status   serinv1.CanaryStatus
		rev      string // default rev2
		primary  *Workload
		canary   *Workload
		checks   observer

		wantRun     *CheckRequest
		wantPhase   serinv1.CanaryPhase
		wantWeight  int
		wantIter    int
		wantApplied string // checked when set
		wantPromo   string // checked when set
		wantFailed  int
		wantPaused  bool
		wantActions string
		wantEvents  string
		wantRefusal string // a substring of the OperationRefused message
		wantRequeue time.Duration
	}{
		// promote
		{
			name: "promote passes a closed confirm-rollout gate", op: promote, spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseWaiting, idleAt("rev1")), wantPhase: serinv1.CanaryPhaseProgressing, wantApplied: "rev2",
			wantActions: "ScaleCanaryUp SetTraffic(0)", wantEvents: "OperationPromote NewRevision", wantRequeue: time.Minute,
		},
		{
			name: "promote in Progressing takes the next step before the interval, without checks", op: promote, spec: canarySpec(metric, hook(serinv1.ConfirmTrafficIncreaseHook)),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1)), wantPhase: serinv1.CanaryPhaseProgressing,
			wantWeight: 40, wantIter: 2, wantActions: "SetTraffic(40)", wantEvents: "OperationPromote Advanced", wantRequeue: time.Minute,
		},
		{
			name: "promote at maxWeight passes the confirm-promotion gate", op: promote, spec: canarySpec(metric, hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseProgressing, weight(40), iterations(2)), wantPhase: serinv1.CanaryPhasePromoting,
			wantWeight: 40, wantIter: 2, wantEvents: "OperationPromote Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "promote in WaitingPromotion passes the closed gate", op: promote, spec: canarySpec(hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseWaitingPromotion, weight(40)), wantPhase: serinv1.CanaryPhasePromoting,
			wantWeight: 40, wantEvents: "OperationPromote Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "promote counts a blue/green iteration", op: promote, spec: canarySpec(blueGreen(3), hook(serinv1.RolloutHook)),
			status: status(serinv1.CanaryPhaseProgressing, iterations(1)), wantPhase: serinv1.CanaryPhaseProgressing,
			wantIter: 2, wantEvents: "OperationPromote Advanced", wantRequeue: time.Minute,
		},
		{
			name: "promote keeps the weight cap of a partly ready canary", op: promote, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1)), canary: &Workload{Exists: true, Ready: true, Pods: 4, ReadyPods: 3},
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 30, wantIter: 2, wantActions: "SetTraffic(30)",
			wantEvents: "OperationPromote WeightCapped", wantRequeue: time.Minute,
		},
		{
			name: "promote is refused while the canary is not ready", op: promote, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1)), canary: &Workload{Exists: true, Message: "1 of 2 pods ready"},
			wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20, wantIter: 1, wantEvents: "!OperationRefused",
			wantRefusal: "not ready: 1 of 2 pods ready", wantRequeue: 4*time.Minute + 30*time.Second,
		},
		{
			name: "a rollback that is due wins over promote", op: promote, spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1), failed(2)), wantFailed: 2, wantPhase: serinv1.CanaryPhaseFailed,
			wantIter: 1, wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "!OperationRefused !RolledBack",
			wantRefusal: "reached the threshold",
		},
		{
			name: "promote is refused when a new revision restarts the analysis", op: promote, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1)), rev: "rev3", wantPhase: serinv1.CanaryPhaseProgressing,
			wantApplied: "rev3", wantActions: "SetTraffic(0) ScaleCanaryUp", wantEvents: "!OperationRefused AnalysisRestarted",
			wantRefusal: "restarts from step 0", wantRequeue: time.Minute,
		},
		{
			name: "promote is refused while paused", op: promote, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), paused), wantPhase: serinv1.CanaryPhaseProgressing,
			wantWeight: 20, wantPaused: true, wantEvents: "!OperationRefused", wantRefusal: "resume it first",
		},
		{
			name: "promote is refused during the promotion", op: promote, spec: canarySpec(),
			status: status(serinv1.CanaryPhasePromoting, weight(40)), wantPhase: serinv1.CanaryPhaseFinalising, primary: &copied,
			wantActions: "SetTraffic(0)", wantEvents: "!OperationRefused Finalising", wantRefusal: "already being promoted", wantRequeue: time.Second,
		},
		{
			name: "promote is refused on a Succeeded canary", op: promote, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), wantPhase: serinv1.CanaryPhaseSucceeded,
			wantEvents: "!OperationRefused", wantRefusal: "no release in flight: the phase is Succeeded",
		},
		{
			name: "promote is refused on a Failed canary", op: promote, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFailed), wantPhase: serinv1.CanaryPhaseFailed,
			wantEvents: "!OperationRefused", wantRefusal: "retry it first",
		},

		// promote-full
		{
			name: "promote-full skips the remaining steps", op: promoteFull, spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1)), wantPhase: serinv1.CanaryPhasePromoting,
			wantWeight: 20, wantIter: 1, wantEvents: "OperationPromoteFull Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "promote-full of blue/green enters Promoting", op: promoteFull, spec: canarySpec(blueGreen(3)),
			status: status(serinv1.CanaryPhaseProgressing, iterations(1)), wantPhase: serinv1.CanaryPhasePromoting,
			wantIter: 1, wantEvents: "OperationPromoteFull Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "promote-full from Waiting promotes with traffic on the primary", op: promoteFull, spec: canarySpec(blueGreen(3), hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseWaiting, idleAt("rev1")), wantPhase: serinv1.CanaryPhasePromoting, wantApplied: "rev2",
			wantEvents: "OperationPromoteFull", wantRequeue: time.Millisecond,
		},
		{
			name: "promote-full in WaitingPromotion promotes", op: promoteFull, spec: canarySpec(hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseWaitingPromotion, weight(40)), wantPhase: serinv1.CanaryPhasePromoting,
			wantWeight: 40, wantEvents: "OperationPromoteFull Promoting", wantRequeue: time.Millisecond,
		},
		{
			name: "promote-full is refused on an Initialized canary", op: promoteFull, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseInitialized, idleAt("rev2")), wantPhase: serinv1.CanaryPhaseInitialized,
			wantEvents: "!OperationRefused", wantRefusal: "no release in flight",
		},

		// abort
		{
			name: "abort rolls back mid-analysis", op: abort, spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1)), wantPhase: serinv1.CanaryPhaseFailed, wantIter: 1,
			wantApplied: "rev2", wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "OperationAbort !RolledBack",
		},
		{
			name: "abort rolls back a paused release and ends the pause", op: abort, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), paused), wantPhase: serinv1.CanaryPhaseFailed,
			wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "OperationAbort !RolledBack",
		},
		{
			name: "abort in WaitingPromotion rolls back", op: abort, spec: canarySpec(hook(serinv1.ConfirmPromotionHook)),
			status: status(serinv1.CanaryPhaseWaitingPromotion, weight(40)), wantPhase: serinv1.CanaryPhaseFailed,
			wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "OperationAbort !RolledBack",
		},
		{
			name: "abort in Waiting fails the waiting revision", op: abort, spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseWaiting, idleAt("rev1")), wantPhase: serinv1.CanaryPhaseFailed, wantApplied: "rev2",
			wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "OperationAbort !RolledBack",
		},
		{
			name: "abort fails a revision that arrived mid-analysis", op: abort, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20)), rev: "rev3", wantPhase: serinv1.CanaryPhaseFailed, wantApplied: "rev3",
			wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "OperationAbort !RolledBack",
		},
		{
			name: "abort during the promotion puts the promoted revision back into the primary", op: abort, spec: canarySpec(),
			status: status(serinv1.CanaryPhasePromoting, weight(40)), wantPhase: serinv1.CanaryPhaseFailed, primary: &copied,
			wantActions: "SetTraffic(0) RestorePrimary(rev1) ScaleCanaryDown RunPostRollout", wantEvents: "OperationAbort !RolledBack",
		},
		{
			name: "abort before the promotion copied anything leaves the primary alone", op: abort, spec: canarySpec(),
			status: status(serinv1.CanaryPhasePromoting, weight(40)), wantPhase: serinv1.CanaryPhaseFailed,
			wantActions: "SetTraffic(0) ScaleCanaryDown RunPostRollout", wantEvents: "OperationAbort !RolledBack",
		},
		{
			name: "abort is refused while finalising", op: abort, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFinalising), wantPhase: serinv1.CanaryPhaseSucceeded, primary: &copied, wantPromo: "rev2",
			wantActions: "ScaleCanaryDown RunPostRollout", wantEvents: "!OperationRefused Succeeded", wantRefusal: "revert the target",
		},
		{
			name: "abort is refused on a Failed canary", op: abort, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFailed, failed(2)), wantFailed: 2, wantPhase: serinv1.CanaryPhaseFailed,
			wantEvents: "!OperationRefused", wantRefusal: "already failed",
		},
		{
			name: "abort is refused on a Succeeded canary", op: abort, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), wantPhase: serinv1.CanaryPhaseSucceeded,
			wantEvents: "!OperationRefused", wantRefusal: "no release in flight",
		},

		// retry
		{
			name: "retry runs a Failed analysis again", op: retry, spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseFailed, failed(2), weight(0), iterations(1)), wantPhase: serinv1.CanaryPhaseProgressing, wantApplied: "rev2",
			wantActions: "ScaleCanaryUp SetTraffic(0)", wantEvents: "OperationRetry NewRevision", wantRequeue: time.Minute,
		},
		{
			name: "retry asks the confirm-rollout gate", op: retry, spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseFailed, failed(2)), wantRun: &CheckRequest{Gate: serinv1.ConfirmRolloutHook},
		},
		{
			name: "retry behind a closed confirm-rollout gate waits", op: retry, spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseFailed, failed(2)), checks: gatesClosed, wantFailed: 2, wantPhase: serinv1.CanaryPhaseWaiting,
			wantApplied: "rev2", wantEvents: "OperationRetry WaitingForApproval", wantRequeue: time.Minute,
		},
		{
			name: "retry is refused when a new revision is analysed", op: retry, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFailed, failed(2)), rev: "rev3", wantPhase: serinv1.CanaryPhaseProgressing, wantApplied: "rev3",
			wantActions: "ScaleCanaryUp SetTraffic(0)", wantEvents: "!OperationRefused NewRevision", wantRefusal: "new revision", wantRequeue: time.Minute,
		},
		{
			name: "retry is refused when the target is back at the promoted revision", op: retry, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFailed, failed(2)), rev: "rev1", wantFailed: 2, wantPhase: serinv1.CanaryPhaseSucceeded, wantApplied: "rev1",
			wantActions: "SetTraffic(0) ScaleCanaryDown", wantEvents: "!OperationRefused RevertedToPromoted", wantRefusal: "back at the promoted revision",
		},
		{
			name: "abort is refused when the target is back at the promoted revision", op: abort, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20)), rev: "rev1", wantPhase: serinv1.CanaryPhaseSucceeded, wantApplied: "rev1",
			wantActions: "SetTraffic(0) ScaleCanaryDown", wantEvents: "!OperationRefused RevertedToPromoted", wantRefusal: "back at the promoted revision",
		},
		{
			name: "retry is refused in Progressing", op: retry, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20)), wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20,
			wantEvents: "!OperationRefused", wantRefusal: "only a Failed analysis can be retried, the phase is Progressing", wantRequeue: 30 * time.Second,
		},
		{
			name: "retry is refused after a failed initialisation", op: retry, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFailed, idleAt("")), primary: &Workload{Exists: true, Message: "0 of 2 ready"},
			wantPhase: serinv1.CanaryPhaseFailed, wantActions: "EnsurePrimary", wantEvents: "!OperationRefused", wantRefusal: "retries it by itself", wantRequeue: 4*time.Minute + 30*time.Second,
		},

		// pause and resume
		{
			name: "pause holds a due step", op: pause, spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), wantPhase: serinv1.CanaryPhaseProgressing,
			wantWeight: 20, wantIter: 1, wantPaused: true, wantEvents: "OperationPause",
		},
		{
			name: "pause holds a closed gate", op: pause, spec: canarySpec(hook(serinv1.ConfirmRolloutHook)),
			status: status(serinv1.CanaryPhaseWaiting, idleAt("rev1"), due), wantPhase: serinv1.CanaryPhaseWaiting,
			wantPaused: true, wantEvents: "OperationPause",
		},
		{
			name: "pause is refused when already paused", op: pause, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), paused), wantPhase: serinv1.CanaryPhaseProgressing,
			wantWeight: 20, wantPaused: true, wantEvents: "!OperationRefused", wantRefusal: "already paused",
		},
		{
			name: "pause is refused during the promotion", op: pause, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseFinalising), wantPhase: serinv1.CanaryPhaseSucceeded, wantApplied: "rev2",
			wantActions: "ScaleCanaryDown RunPostRollout", wantEvents: "!OperationRefused Succeeded", wantRefusal: "cannot be held",
		},
		{
			name: "pause is refused on a Succeeded canary", op: pause, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), wantPhase: serinv1.CanaryPhaseSucceeded,
			wantEvents: "!OperationRefused", wantRefusal: "no release in flight",
		},
		{
			name: "resume continues one interval later", op: resume, spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1), paused), wantPhase: serinv1.CanaryPhaseProgressing,
			wantWeight: 20, wantIter: 1, wantEvents: "OperationResume", wantRequeue: time.Minute,
		},
		{
			name: "resume is refused when not paused", op: resume, spec: canarySpec(metric),
			status: status(serinv1.CanaryPhaseProgressing, weight(20), iterations(1)), wantPhase: serinv1.CanaryPhaseProgressing,
			wantWeight: 20, wantIter: 1, wantEvents: "!OperationRefused", wantRefusal: "not paused", wantRequeue: 30 * time.Second,
		},

		// Undo.
		{
			name: "undo puts a kept revision back into the primary", op: undo, revision: "rev0", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), primary: &copied,
			wantPhase: serinv1.CanaryPhaseSucceeded, wantPromo: "rev0", wantApplied: "rev2",
			wantActions: "RestorePrimary(rev0)", wantEvents: "OperationUndo",
		},
		{
			name: "undo after a failed release", op: undo, revision: "rev0", spec: canarySpec(),
			status:    status(serinv1.CanaryPhaseFailed, failed(2)),
			wantPhase: serinv1.CanaryPhaseSucceeded, wantPromo: "rev0", wantFailed: 2,
			wantActions: "RestorePrimary(rev0)", wantEvents: "OperationUndo",
		},
		{
			name: "undo is refused mid-analysis", op: undo, revision: "rev0", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseProgressing, weight(20)), wantPhase: serinv1.CanaryPhaseProgressing, wantWeight: 20,
			wantEvents: "!OperationRefused", wantRefusal: "abort it first", wantRequeue: 30 * time.Second,
		},
		{
			name: "undo to the revision the primary runs is refused", op: undo, revision: "rev2", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), primary: &copied, wantPhase: serinv1.CanaryPhaseSucceeded,
			wantEvents: "!OperationRefused", wantRefusal: "already runs revision rev2",
		},
		{
			name: "undo without a revision is refused", op: undo, spec: canarySpec(),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), wantPhase: serinv1.CanaryPhaseSucceeded,
			wantEvents: "!OperationRefused", wantRefusal: "needs the revision",
		},

		// Any operation.
		{
			name: "an unknown operation is refused", op: "rollforward", spec: canarySpec(),
			status: status(serinv1.CanaryPhaseSucceeded, idleAt("rev2")), wantPhase: serinv1.CanaryPhaseSucceeded,
			wantEvents: "!OperationRefused", wantRefusal: `unknown operation "rollforward"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := Operation{Kind: tt.op, ID: "2026-01-01T00:10:00Z", By: "alice", Revision: tt.revision}
			in := Input{
				Spec: tt.spec, Status: tt.status, Now: t0.Add(now), Revision: "rev2", Primary: ready, Canary: ready,
				Operation: &op,
			}
			if tt.rev != "" {
				in.Revision = tt.rev
			}
			if tt.canary != nil {
				in.Canary = *tt.canary
			}
			if tt.primary != nil {
				in.Primary = *tt.primary
			}
			got := decideLikeTheReconciler(in, tt.checks)
			if tt.wantRun != nil || got.Run != nil {
				if got.Run == nil || tt.wantRun == nil || *got.Run != *tt.wantRun {
					t.Fatalf("Run = %+v, want %+v", got.Run, tt.wantRun)
				}
				return
			}
			s := got.Status
			if s.LastHandledOperation != op.ID {
				t.Errorf("lastHandledOperation %q, want %q", s.LastHandledOperation, op.ID)
			}
			if s.Phase != tt.wantPhase {
				t.Errorf("phase %s, want %s", s.Phase, tt.wantPhase)
			}
			if s.CanaryWeight != tt.wantWeight || s.Iterations != tt.wantIter {
				t.Errorf("weight/iterations = %d/%d, want %d/%d", s.CanaryWeight, s.Iterations, tt.wantWeight, tt.wantIter)
			}
			if tt.wantPromo != "" && s.LastPromotedSpec != tt.wantPromo {
				t.Errorf("lastPromotedSpec %s, want %s", s.LastPromotedSpec, tt.wantPromo)
			}
			if s.FailedChecks != tt.wantFailed {
				t.Errorf("failedChecks %d, want %d", s.FailedChecks, tt.wantFailed)
			}
			if tt.wantApplied != "" && s.LastAppliedSpec != tt.wantApplied {
				t.Errorf("lastAppliedSpec %s, want %s", s.LastAppliedSpec, tt.wantApplied)
			}
			if s.Paused != tt.wantPaused {
				t.Errorf("paused %t, want %t", s.Paused, tt.wantPaused)
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
			for _, e := range got.Events {
				if strings.HasPrefix(e.Reason, "Operation") && !strings.Contains(e.Message, "by alice (request 2026-01-01T00:10:00Z)") {
					t.Errorf("event %s %q does not say who asked and when", e.Reason, e.Message)
				}
				if e.Reason == ReasonOperationRefused && (tt.wantRefusal == "" || !strings.Contains(e.Message, tt.wantRefusal)) {
					t.Errorf("refusal %q, want it to contain %q", e.Message, tt.wantRefusal)
				}
			}
		})
	}
}

func TestDecidePaused(t *testing.T) {
	// Without an operation a paused release neither steps, restarts for a
	// new revision, nor rolls back past the deadline.
	for _, rev := range []string{"rev2", "rev3"} {
		in := Input{
			Spec: canarySpec(metric), Status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1), paused, func(s *serinv1.CanaryStatus) {
				s.LastTransitionTime, s.LastIterationTime = at(0), at(0)
			}),
			Now: t0.Add(now), Revision: rev, Primary: ready, Canary: Workload{Exists: true, Message: "0 of 2 ready"},
		}
		got := Decide(in)
		if got.Run != nil || formatActions(got.Actions) != "" || got.Events != nil || got.RequeueAfter != 0 {
			t.Errorf("%s: a paused release moved: %+v", rev, got)
		}
		if got.Status.Phase != serinv1.CanaryPhaseProgressing || got.Status.CanaryWeight != 20 || !got.Status.Paused {
			t.Errorf("%s: status %+v", rev, got.Status)
		}
	}
}

func TestDecideSuspendedKeepsTheOperation(t *testing.T) {
	in := Input{
		Spec:   canarySpec(func(s *serinv1.CanarySpec) { s.Suspend = true }),
		Status: status(serinv1.CanaryPhaseProgressing, weight(20)), Now: t0.Add(now), Revision: "rev2", Primary: ready, Canary: ready,
		Operation: &Operation{Kind: OperationAbort, ID: "1"},
	}
	got := Decide(in)
	if got.Status.LastHandledOperation != "" || got.Status.Phase != serinv1.CanaryPhaseProgressing {
		t.Errorf("a suspended Canary handled the operation: %+v", got.Status)
	}
	if why := Refusal(in.Spec, in.Status, OperationAbort); !strings.Contains(why, "spec.suspend") {
		t.Errorf("Refusal = %q, want it to name spec.suspend", why)
	}
}

func TestReplaces(t *testing.T) {
	tests := []struct {
		op, pending OperationKind
		want        bool
	}{
		{OperationAbort, OperationPromote, true},
		{OperationPromote, OperationAbort, false},
		{OperationPromoteFull, OperationAbort, false},
		{OperationPause, OperationAbort, false},
		{OperationAbort, OperationAbort, true},
		{OperationPromote, OperationPause, true},
		{OperationResume, OperationPause, true},
	}
	for _, tt := range tests {
		if got := Replaces(tt.op, tt.pending); got != tt.want {
			t.Errorf("Replaces(%s, pending %s) = %t, want %t", tt.op, tt.pending, got, tt.want)
		}
	}
}

func TestOperationReason(t *testing.T) {
	for kind, want := range map[OperationKind]string{
		OperationPromote: "OperationPromote", OperationPromoteFull: "OperationPromoteFull", OperationAbort: "OperationAbort",
		OperationRetry: "OperationRetry", OperationPause: "OperationPause", OperationResume: "OperationResume",
	} {
		if got := kind.Reason(); got != want {
			t.Errorf("%s: reason %s, want %s", kind, got, want)
		}
	}
}

func TestPendingOperation(t *testing.T) {
	annotated := func(annotations map[string]string, handled string) *serinv1.Canary {
		c := &serinv1.Canary{}
		c.Annotations = annotations
		c.Status.LastHandledOperation = handled
		return c
	}
	request := map[string]string{
		serinv1.OperationAnnotation:   "abort",
		serinv1.OperationIDAnnotation: "2026-01-01T00:10:00Z",
		serinv1.OperationByAnnotation: "alice",
	}
	got := PendingOperation(annotated(request, "2026-01-01T00:05:00Z"))
	if want := (Operation{Kind: OperationAbort, ID: "2026-01-01T00:10:00Z", By: "alice"}); got == nil || *got != want {
		t.Errorf("pending %+v, want %+v", got, want)
	}
	if got := PendingOperation(annotated(request, "2026-01-01T00:10:00Z")); got != nil {
		t.Errorf("a handled request is pending again: %+v", got)
	}
	if got := PendingOperation(annotated(map[string]string{serinv1.OperationAnnotation: "abort"}, "")); got != nil {
		t.Errorf("a request without an ID is pending: %+v", got)
	}
	if got := PendingOperation(annotated(nil, "")); got != nil {
		t.Errorf("a Canary without annotations has %+v pending", got)
	}
}
