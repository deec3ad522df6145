package analysis

import (
	"reflect"
	"testing"
	"time"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// world is a minimal pure model of the cluster for whole-release runs:
// workloads become ready one tick after they change.
type world struct {
	now            time.Time
	revision       string
	primaryRev     string
	canaryReplicas int
	weight         int
	canaryDelay    int // ticks until a scaled-up canary is ready
}

func (w *world) input(spec serinv1.CanarySpec, st serinv1.CanaryStatus, checks *CheckResults) Input {
	return Input{
		Spec: spec, Status: st, Now: w.now, Revision: w.revision, Checks: checks,
		Primary: Workload{Exists: w.primaryRev != "", Ready: w.primaryRev != ""},
		Canary:  Workload{Exists: true, Ready: w.canaryReplicas > 0 && w.canaryDelay == 0},
	}
}

func (w *world) apply(actions []Action) {
	for _, a := range actions {
		switch a.Kind {
		case EnsurePrimary:
			if w.primaryRev == "" {
				w.primaryRev = w.revision
			}
		case PromotePrimary:
			w.primaryRev = w.revision
		case ScaleCanaryUp:
			w.canaryReplicas, w.canaryDelay = 2, 1
		case ScaleCanaryDown, ScaleTargetToZero:
			w.canaryReplicas = 0
		case SetTraffic:
			w.weight = a.Traffic.CanaryWeight
		}
	}
}

// release runs Decide like the reconciler does, until the phase is one of
// stop or 100 steps passed, and returns the phases and weights it saw.
func release(t *testing.T, spec serinv1.CanarySpec, w *world, st *serinv1.CanaryStatus, checks func(CheckRequest) CheckResults, stop ...serinv1.CanaryPhase) (phases []serinv1.CanaryPhase, weights []int) {
	t.Helper()
	for range 100 {
		d := Decide(w.input(spec, *st, nil))
		if d.Run != nil {
			res := checks(*d.Run)
			d = Decide(w.input(spec, *st, &res))
			if d.Run != nil {
				t.Fatal("Decide asked for checks twice")
			}
		}
		w.apply(d.Actions)
		if d.Status.Phase != st.Phase {
			phases = append(phases, d.Status.Phase)
		}
		if d.Status.CanaryWeight != st.CanaryWeight {
			weights = append(weights, d.Status.CanaryWeight)
		}
		*st = d.Status
		for _, p := range stop {
			if st.Phase == p {
				return phases, weights
			}
		}
		if w.canaryDelay > 0 {
			w.canaryDelay--
		}
		step := d.RequeueAfter
		if step == 0 {
			step = time.Second
		}
		w.now = w.now.Add(step)
	}
	t.Fatalf("no end after 100 steps: phase %s", st.Phase)
	return nil, nil
}

func passing(CheckRequest) CheckResults { return CheckResults{GateOpen: true} }

func TestWholeCanaryRelease(t *testing.T) {
	spec := canarySpec(metric, func(s *serinv1.CanarySpec) { s.Analysis.StepWeightPromotion = 20 })
	w := &world{now: t0, revision: "rev1"}
	var st serinv1.CanaryStatus

	phases, _ := release(t, spec, w, &st, passing, serinv1.CanaryPhaseInitialized)
	if want := []serinv1.CanaryPhase{"Initializing", "Initialized"}; !reflect.DeepEqual(phases, want) {
		t.Fatalf("init phases %v, want %v", phases, want)
	}

	w.revision = "rev2"
	phases, weights := release(t, spec, w, &st, passing, serinv1.CanaryPhaseSucceeded)
	if want := []serinv1.CanaryPhase{"Progressing", "Promoting", "Finalising", "Succeeded"}; !reflect.DeepEqual(phases, want) {
		t.Errorf("release phases %v, want %v", phases, want)
	}
	if want := []int{20, 40, 20, 0}; !reflect.DeepEqual(weights, want) {
		t.Errorf("weights %v, want %v", weights, want)
	}
	if w.primaryRev != "rev2" || w.canaryReplicas != 0 || w.weight != 0 {
		t.Errorf("after promotion primary=%s canaryReplicas=%d weight=%d", w.primaryRev, w.canaryReplicas, w.weight)
	}
}

func TestWholeFailedRelease(t *testing.T) {
	spec := canarySpec(metric)
	w := &world{now: t0, revision: "rev1"}
	var st serinv1.CanaryStatus
	release(t, spec, w, &st, passing, serinv1.CanaryPhaseInitialized)

	w.revision = "rev2"
	calls := 0
	failing := func(req CheckRequest) CheckResults {
		calls++
		return CheckResults{GateOpen: true, Failures: []string{"request-success-rate 80 < 99"}}
	}
	phases, weights := release(t, spec, w, &st, failing, serinv1.CanaryPhaseFailed)
	if want := []serinv1.CanaryPhase{"Progressing", "Failed"}; !reflect.DeepEqual(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	// The first step shifts to 20% (no pre-rollout hooks), then two failed
	// analyses reach the threshold of 2.
	if want := []int{20, 0}; !reflect.DeepEqual(weights, want) {
		t.Errorf("weights %v, want %v", weights, want)
	}
	if calls != 2 || st.FailedChecks != 2 {
		t.Errorf("checks ran %d times, failedChecks %d; want 2 and 2", calls, st.FailedChecks)
	}
	if w.primaryRev != "rev1" || w.canaryReplicas != 0 || w.weight != 0 {
		t.Errorf("after rollback primary=%s canaryReplicas=%d weight=%d", w.primaryRev, w.canaryReplicas, w.weight)
	}
}

// TestDecideIsRepeatable models a controller crash between act and the status
// patch: deciding again from the persisted status yields the same step, so
// nothing is skipped, and the idempotent actions are not repeated in effect.
func TestDecideIsRepeatable(t *testing.T) {
	spec := canarySpec(metric)
	st := status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1))
	w := &world{now: t0.Add(now), revision: "rev2", primaryRev: "rev1", canaryReplicas: 2}
	res := CheckResults{GateOpen: true}
	first := Decide(w.input(spec, st, &res))
	second := Decide(w.input(spec, st, &res))
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("decisions differ:\n%+v\n%+v", first, second)
	}
	// Once the status is patched, the next step is an interval away.
	after := Decide(w.input(spec, first.Status, nil))
	if after.Run != nil || after.RequeueAfter != time.Minute || len(after.Actions) != 0 {
		t.Errorf("after the patch: run=%v requeue=%s actions=%v", after.Run, after.RequeueAfter, after.Actions)
	}
}
