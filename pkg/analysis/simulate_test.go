package analysis

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	matched        bool // matching requests are routed to the canary
	canaryDelay    int  // ticks until a scaled-up canary is ready
}

func (w *world) input(spec serinv1.CanarySpec, st serinv1.CanaryStatus, checks *CheckResults) Input {
	return Input{
		Spec: spec, Status: st, Now: w.now, Revision: w.revision, Checks: checks,
		Primary: Workload{Exists: w.primaryRev != "", Ready: w.primaryRev != "", Revision: w.primaryRev},
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
			// The workload layer refuses a target that moved on.
			if a.Revision == w.revision {
				w.primaryRev = a.Revision
			}
		case RestorePrimary:
			w.primaryRev = a.Revision
		case ScaleCanaryUp:
			w.canaryReplicas, w.canaryDelay = 2, 1
		case ScaleCanaryDown, ScaleTargetToZero:
			w.canaryReplicas = 0
		case SetTraffic:
			w.weight, w.matched = a.Traffic.CanaryWeight, a.Traffic.MatchToCanary
		}
	}
}

// release runs Decide like the reconciler does, until the phase is one of
// stop or 100 steps passed, and returns the phases and weights it saw.
func release(t *testing.T, spec serinv1.CanarySpec, w *world, st *serinv1.CanaryStatus, checks observer, stop ...serinv1.CanaryPhase) (phases []serinv1.CanaryPhase, weights []int) {
	t.Helper()
	for range 100 {
		d := Decide(w.input(spec, *st, nil))
		if d.Run != nil {
			res := checks(spec, *d.Run)
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
	failing := func(spec serinv1.CanarySpec, req CheckRequest) CheckResults {
		calls++
		return belowMin(spec, req)
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
	res := passing(spec, CheckRequest{Analysis: true})
	first := Decide(w.input(spec, st, &res))
	second := Decide(w.input(spec, st, &res))
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("decisions differ:\n%+v\n%+v", first, second)
	}
	// Once the status is patched, the next step is an interval away.
	after := Decide(w.input(spec, first.Status, nil))
	if after.Run != nil || after.RequeueAfter != time.Minute || formatActions(after.Actions) != "" {
		t.Errorf("after the patch: run=%v requeue=%s actions=%v", after.Run, after.RequeueAfter, after.Actions)
	}
}

// sequence answers the i-th call of the checks with the i-th observer, and
// every later call with the last one.
func sequence(obs ...observer) (observer, *int) {
	calls := new(int)
	return func(spec serinv1.CanarySpec, req CheckRequest) CheckResults {
		o := obs[min(*calls, len(obs)-1)]
		*calls++
		return o(spec, req)
	}, calls
}

// TestNoDataNeverPromotes: a release whose queries return nothing never
// advances past its first step (which judges no traffic) and ends Failed
// once the no-data intervals count up to the threshold; it never reaches
// Promoting.
func TestNoDataNeverPromotes(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec serinv1.CanarySpec
	}{
		{"canary", canarySpec(metric, func(s *serinv1.CanarySpec) { s.Analysis.Threshold = 3; s.ProgressDeadlineSeconds = new(int32(3600)) })},
		{"blue/green", canarySpec(blueGreen(2), metric, func(s *serinv1.CanarySpec) { s.Analysis.Threshold = 3; s.ProgressDeadlineSeconds = new(int32(3600)) })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &world{now: t0, revision: "rev1"}
			var st serinv1.CanaryStatus
			release(t, tt.spec, w, &st, passing, serinv1.CanaryPhaseInitialized)

			w.revision = "rev2"
			obs, calls := sequence(noData)
			phases, weights := release(t, tt.spec, w, &st, obs, serinv1.CanaryPhaseFailed, serinv1.CanaryPhasePromoting)
			if want := []serinv1.CanaryPhase{"Progressing", "Failed"}; !reflect.DeepEqual(phases, want) {
				t.Errorf("phases %v, want %v", phases, want)
			}
			wantWeights := []int{20, 0}
			if tt.name == "blue/green" {
				wantWeights = nil
			}
			if !reflect.DeepEqual(weights, wantWeights) {
				t.Errorf("weights %v, want %v", weights, wantWeights)
			}
			// Threshold 3 at 3 no-data intervals per failed check.
			if *calls != 9 || st.FailedChecks != 3 || st.Iterations > 1 {
				t.Errorf("checks ran %d times, failedChecks %d, iterations %d; want 9, 3, at most 1", *calls, st.FailedChecks, st.Iterations)
			}
			if w.primaryRev != "rev1" {
				t.Errorf("the primary runs %s", w.primaryRev)
			}
		})
	}
}

// TestOutageHoldsThenResumes: an outage shorter than the limit holds the
// step it hits; once data is back the release goes on, each weight step
// taken once and in order, with no failed check.
func TestOutageHoldsThenResumes(t *testing.T) {
	spec := canarySpec(metric, func(s *serinv1.CanarySpec) { s.Analysis.MaxWeight = 60 })
	w := &world{now: t0, revision: "rev1"}
	var st serinv1.CanaryStatus
	release(t, spec, w, &st, passing, serinv1.CanaryPhaseInitialized)

	w.revision = "rev2"
	obs, calls := sequence(passing, queryError, queryError, passing)
	phases, weights := release(t, spec, w, &st, obs, serinv1.CanaryPhaseSucceeded, serinv1.CanaryPhaseFailed)
	if want := []serinv1.CanaryPhase{"Progressing", "Promoting", "Finalising", "Succeeded"}; !reflect.DeepEqual(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	if want := []int{20, 40, 60, 0}; !reflect.DeepEqual(weights, want) {
		t.Errorf("weights %v, want %v", weights, want)
	}
	if *calls != 5 || st.FailedChecks != 0 || st.Metrics[0].Errors != 2 {
		t.Errorf("checks ran %d times, failedChecks %d, errors %d; want 5, 0, 2", *calls, st.FailedChecks, st.Metrics[0].Errors)
	}
	if w.primaryRev != "rev2" {
		t.Errorf("the primary runs %s", w.primaryRev)
	}
}

// TestTargetChangedBeforeTheCopy: the target moves on after the analysis
// passed but before the primary took the revision; the new revision is
// analysed from step 0 and the unanalysed one never reaches the primary.
func TestTargetChangedBeforeTheCopy(t *testing.T) {
	spec := canarySpec(metric)
	w := &world{now: t0, revision: "rev1"}
	var st serinv1.CanaryStatus
	release(t, spec, w, &st, passing, serinv1.CanaryPhaseInitialized)

	w.revision = "rev2"
	release(t, spec, w, &st, passing, serinv1.CanaryPhasePromoting)
	w.revision = "rev3"
	phases, _ := release(t, spec, w, &st, passing, serinv1.CanaryPhaseSucceeded)
	if want := []serinv1.CanaryPhase{"Progressing", "Promoting", "Finalising", "Succeeded"}; !reflect.DeepEqual(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	if w.primaryRev != "rev3" || st.LastPromotedSpec != "rev3" {
		t.Errorf("primary %s, lastPromotedSpec %s; want rev3", w.primaryRev, st.LastPromotedSpec)
	}
}

// TestHistoryIsBounded: every judged interval is recorded with its checks,
// verdict and action; the history keeps the last 10 and stays small with
// 50 metrics.
func TestHistoryIsBounded(t *testing.T) {
	spec := canarySpec(func(s *serinv1.CanarySpec) {
		s.Analysis.Threshold, s.Analysis.StepWeight, s.Analysis.MaxWeight = 100, 1, 100
		for i := range 50 {
			s.Analysis.Metrics = append(s.Analysis.Metrics, serinv1.CanaryMetric{
				Name: fmt.Sprintf("a-rather-long-metric-name-number-%02d", i), Query: "q", ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)},
			})
		}
	})
	w := &world{now: t0, revision: "rev1"}
	var st serinv1.CanaryStatus
	release(t, spec, w, &st, passing, serinv1.CanaryPhaseInitialized)
	w.revision = "rev2"
	obs, _ := sequence(passing, noData, passing, passing, passing, passing, passing, passing, passing, passing, passing, passing, belowMin)
	for st.FailedChecks == 0 {
		d := decideLikeTheReconciler(w.input(spec, st, nil), obs)
		w.apply(d.Actions)
		st = d.Status
		w.now = w.now.Add(time.Minute)
		if w.canaryDelay > 0 {
			w.canaryDelay--
		}
	}
	if len(st.History) != 10 {
		t.Fatalf("history has %d records, want 10", len(st.History))
	}
	last := st.History[9]
	if last.Verdict != VerdictFailed || last.Action != "hold" || last.Revision != "rev2" || !strings.Contains(last.Checks, "a-rather-long-metric-name-number-00=90(failed)") {
		t.Errorf("last record %+v", last)
	}
	for _, r := range st.History {
		if len(r.Checks) > maxOutcomesLength {
			t.Errorf("a record's checks are %d bytes", len(r.Checks))
		}
	}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	// 50 metric statuses and 10 capped records.
	if len(raw) > 40<<10 {
		t.Errorf("the status is %d bytes", len(raw))
	}

	// An inconclusive interval is recorded as such.
	spec.Analysis.Metrics = spec.Analysis.Metrics[:1]
	st.FailedChecks = 0
	st.LastIterationTime = metav1.NewTime(w.now.Add(-time.Hour))
	d := decideLikeTheReconciler(w.input(spec, st, nil), noData)
	rec := d.Status.History[9]
	if rec.Verdict != VerdictInconclusive || rec.Checks != "a-rather-long-metric-name-number-00=no-data" || rec.Action != "hold" {
		t.Errorf("inconclusive record %+v", rec)
	}
}

// TestInvalidConditionHolds: a condition that does not compile moves
// nothing and counts nothing; the Decision says what is wrong.
func TestInvalidConditionHolds(t *testing.T) {
	spec := canarySpec(metric, func(s *serinv1.CanarySpec) { s.Analysis.Metrics[0].SuccessCondition = "result <" })
	in := Input{Spec: spec, Status: status(serinv1.CanaryPhaseProgressing, due, weight(20), iterations(1)), Now: t0.Add(now), Revision: "rev2", Primary: ready, Canary: ready}
	d := decideLikeTheReconciler(in, passing)
	if !strings.Contains(d.Invalid, "request-success-rate") || !reflect.DeepEqual(d.Status, in.Status) || d.Actions != nil {
		t.Errorf("invalid %q, status changed %v, actions %v", d.Invalid, !reflect.DeepEqual(d.Status, in.Status), d.Actions)
	}
}

// TestABReleaseJudgesRoutedTraffic: an A/B analysis routes the matching
// requests before its first iteration, so its metrics have data from the
// first iteration on: it is promoted after exactly its iterations, with no
// interval held and no failed check.
func TestABReleaseJudgesRoutedTraffic(t *testing.T) {
	spec := canarySpec(blueGreen(2), abTesting, metric)
	w := &world{now: t0, revision: "rev1"}
	var st serinv1.CanaryStatus
	release(t, spec, w, &st, passing, serinv1.CanaryPhaseInitialized)

	w.revision = "rev2"
	calls := 0
	// The canary only gets data once the matching requests reach it.
	dataWhenMatched := func(spec serinv1.CanarySpec, req CheckRequest) CheckResults {
		calls++
		if w.matched {
			return passing(spec, req)
		}
		return noData(spec, req)
	}
	phases, _ := release(t, spec, w, &st, dataWhenMatched, serinv1.CanaryPhaseSucceeded, serinv1.CanaryPhaseFailed)
	if want := []serinv1.CanaryPhase{"Progressing", "Promoting", "Finalising", "Succeeded"}; !reflect.DeepEqual(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	if calls != 2 || st.Iterations != 2 || st.FailedChecks != 0 || st.Metrics[0].NoData != 0 {
		t.Errorf("checks ran %d times, iterations %d, failedChecks %d, no data %d; want 2, 2, 0, 0", calls, st.Iterations, st.FailedChecks, st.Metrics[0].NoData)
	}
}
