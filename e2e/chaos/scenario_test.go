//go:build chaos

package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/stack"
)

const (
	appName = "podinfo"
	v2      = "ghcr.io/serin-dev/podinfo:6.0.1"
	v3      = "ghcr.io/serin-dev/podinfo:6.0.2"
	// phaseTimeout bounds each wait of a script.
	phaseTimeout = 3 * time.Minute
	// gateHold is how long a script keeps a gate closed once the Canary
	// waits behind it.
	gateHold = 2 * time.Second
)

// script says what a release does: the standard one (gates) has a
// confirm-rollout and a confirm-promotion gate on serin-tester, then a
// second release with 10% errors that is rolled back.
type script struct {
	gates  bool // confirm-rollout and confirm-promotion on serin-tester's /gate/check
	second bool // then a release with 10% errors, rolled back
	// canary adjusts the Canary before it is created.
	canary func(*serinv1.Canary)
	// final is the phase the release ends in (the last one's).
	final serinv1.CanaryPhase
}

// standard is the script of the kill and failover scenarios.
var standard = script{gates: true, second: true, final: serinv1.CanaryPhaseFailed}

// release is one run of a script in its own namespace.
type release struct {
	t       *testing.T
	ns      string
	canary  *serinv1.Canary
	rec     *recorder
	token   string
	script  script
	created time.Time
	ended   time.Time
}

// newRelease creates namespace ns, gives it a serin-tester token when the
// script has gates, and starts recording its Canary. Start the
// controllers, then call run.
func newRelease(t *testing.T, ns string, s script) *release {
	t.Helper()
	ctx := t.Context()
	if err := st.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	r := &release{t: t, ns: ns, script: s}
	if s.gates {
		token, err := st.TesterToken(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		r.token = token
	}
	c := stack.NewCanary(ns, appName, serinv1.ProviderIstio)
	c.Labels = map[string]string{shardLabel: ns}
	if s.gates {
		ref := &corev1.LocalObjectReference{Name: stack.TesterSecret}
		c.Spec.Analysis.Webhooks = append(c.Spec.Analysis.Webhooks,
			serinv1.CanaryWebhook{Name: "rollout-gate", Type: serinv1.ConfirmRolloutHook, URL: st.TesterURL + "/gate/check", SecretRef: ref},
			serinv1.CanaryWebhook{Name: "promotion-gate", Type: serinv1.ConfirmPromotionHook, URL: st.TesterURL + "/gate/check", SecretRef: ref})
	}
	if s.canary != nil {
		s.canary(c)
	}
	r.canary = c
	r.rec = newRecorder(t, ns, appName)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s: phases %v, weights %v, routed %v, failed checks %v", ns, r.rec.phases(), r.rec.weights(), r.rec.routedWeights(), r.rec.failedChecks())
		}
	})
	return r
}

// shard is the value of shardLabel the Canary carries.
func (r *release) shard() string { return r.canary.Labels[shardLabel] }

// gate opens or closes the Canary's gate on serin-tester, retrying while
// serin-tester is away.
func (r *release) gate(open bool) error {
	action := "close"
	if open {
		action = "open"
	}
	body, _ := json.Marshal(map[string]string{"name": appName, "namespace": r.ns})
	deadline := time.Now().Add(time.Minute)
	for {
		req, err := http.NewRequestWithContext(r.t.Context(), http.MethodPost, st.TesterURL+"/gate/"+action, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				return nil
			}
			err = fmt.Errorf("gate/%s: %s", action, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// run creates the app and its Canary and drives the script to its end.
func (r *release) run() error {
	ctx := r.t.Context()
	r.created = time.Now()
	if err := st.Client.Create(ctx, stack.NewDeployment(r.ns, appName, 2)); err != nil {
		return err
	}
	if err := st.Client.Create(ctx, r.canary); err != nil {
		return err
	}
	if _, err := r.rec.waitPhase(ctx, serinv1.CanaryPhaseInitialized, 1, phaseTimeout); err != nil {
		return err
	}
	if err := st.Release(ctx, r.ns, appName, v2, stack.Behaviour{}); err != nil {
		return err
	}
	if r.script.gates {
		for _, step := range []struct {
			phase serinv1.CanaryPhase
			open  bool
			hold  time.Duration
		}{
			{serinv1.CanaryPhaseWaiting, true, gateHold},
			{serinv1.CanaryPhaseProgressing, false, 0},
			{serinv1.CanaryPhaseWaitingPromotion, true, gateHold},
		} {
			if _, err := r.rec.waitPhase(ctx, step.phase, 1, phaseTimeout); err != nil {
				return err
			}
			time.Sleep(step.hold)
			if err := r.gate(step.open); err != nil {
				return err
			}
		}
	}
	final := serinv1.CanaryPhaseSucceeded
	if !r.script.second && r.script.final != "" {
		final = r.script.final
	}
	at, err := r.rec.waitPhase(ctx, final, 1, phaseTimeout)
	if err != nil {
		return err
	}
	if r.script.second {
		if err := st.Release(ctx, r.ns, appName, v3, stack.Behaviour{ErrorRatio: 0.1}); err != nil {
			return err
		}
		if at, err = r.rec.waitPhase(ctx, serinv1.CanaryPhaseFailed, 1, phaseTimeout); err != nil {
			return err
		}
	}
	r.ended = at
	// Whatever a fault right at the end would still change shows now.
	time.Sleep(3 * time.Second)
	return nil
}

// outcome is what a release left and went through.
type outcome struct {
	phase        serinv1.CanaryPhase
	primaryImage string
	traffic      int // canary weight in the routing objects at the end
	phases       []serinv1.CanaryPhase
	weights      []int
	routed       []int
	failed       []int
	advanced     map[string]int32
	wall         time.Duration
	// inconsistent lists the stored versions that no single decision
	// could have written after the one before.
	inconsistent []string
}

func (o outcome) String() string {
	return fmt.Sprintf("phase %s, primary %s, traffic %d, phases %v, weights %v, routed %v, failed checks %v, advanced %v, wall %v",
		o.phase, o.primaryImage, o.traffic, o.phases, o.weights, o.routed, o.failed, o.advanced, o.wall.Round(100*time.Millisecond))
}

func (r *release) outcome() (outcome, error) {
	ctx := r.t.Context()
	var c serinv1.Canary
	if err := st.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: appName}, &c); err != nil {
		return outcome{}, err
	}
	img, err := st.Image(ctx, r.ns, appName+"-primary")
	if err != nil {
		return outcome{}, err
	}
	tr, err := st.Telemetry.Routes(ctx, &c)
	if err != nil {
		return outcome{}, err
	}
	adv, err := advanced(ctx, r.ns, appName)
	if err != nil {
		return outcome{}, err
	}
	return outcome{
		phase: c.Status.Phase, primaryImage: img, traffic: int(tr.CanaryWeight),
		phases: r.rec.phases(), weights: r.rec.weights(), routed: r.rec.routedWeights(), failed: r.rec.failedChecks(),
		advanced: adv, wall: r.ended.Sub(r.created),
		inconsistent: r.rec.inconsistent(r.canary.Spec.Analysis.StepWeight, r.canary.Spec.Analysis.MaxWeight),
	}, nil
}

// differences lists how got differs from the fault-free want.
func differences(got, want outcome) []string {
	var d []string
	if got.phase != want.phase {
		d = append(d, fmt.Sprintf("final phase %s, fault-free %s", got.phase, want.phase))
	}
	if got.primaryImage != want.primaryImage {
		d = append(d, fmt.Sprintf("primary runs %s, fault-free %s", got.primaryImage, want.primaryImage))
	}
	if got.traffic != want.traffic {
		d = append(d, fmt.Sprintf("final canary traffic %d, fault-free %d", got.traffic, want.traffic))
	}
	if !slices.Equal(got.phases, want.phases) {
		d = append(d, fmt.Sprintf("phases %v, fault-free %v", got.phases, want.phases))
	}
	if !slices.Equal(got.weights, want.weights) {
		d = append(d, fmt.Sprintf("status weights %v, fault-free %v", got.weights, want.weights))
	}
	if !slices.Equal(got.routed, want.routed) {
		d = append(d, fmt.Sprintf("routed weights %v, fault-free %v", got.routed, want.routed))
	}
	if !slices.Equal(got.failed, want.failed) {
		d = append(d, fmt.Sprintf("failed checks %v, fault-free %v", got.failed, want.failed))
	}
	if len(got.inconsistent) > 0 {
		d = append(d, fmt.Sprintf("stored versions out of order: %s", strings.Join(got.inconsistent, ", ")))
	}
	if !maps.Equal(got.advanced, want.advanced) {
		d = append(d, fmt.Sprintf("Advanced events %v, fault-free %v", got.advanced, want.advanced))
	}
	return d
}

// baselines are the fault-free runs, one per script name, which the
// fault scenarios wait for.
var baselines = struct {
	mu   sync.Mutex
	runs map[string]*baseline
}{runs: map[string]*baseline{}}

type baseline struct {
	done chan struct{}
	out  outcome
	err  error
}

func baselineOf(name string) *baseline {
	baselines.mu.Lock()
	defer baselines.mu.Unlock()
	b := baselines.runs[name]
	if b == nil {
		b = &baseline{done: make(chan struct{})}
		baselines.runs[name] = b
	}
	return b
}

// runBaseline runs script s without faults as the baseline name, on a
// controller of its own (or the shared one given).
func runBaseline(t *testing.T, name, ns string, s script, shared *controller) {
	b := baselineOf(name)
	rep := newReport(t)
	b.err = fmt.Errorf("the fault-free run %s did not finish", name)
	defer close(b.done)
	r := newRelease(t, ns, s)
	if shared == nil {
		startController(t, "a", controllerOptions{shard: r.shard(), leaseNS: ns})
	}
	if b.err = r.run(); b.err != nil {
		t.Error(b.err)
		return
	}
	out, err := r.outcome()
	if err != nil {
		b.err = err
		t.Error(err)
		return
	}
	b.out, b.err = out, nil
	rep.note("%s in %v", b.out.phase, b.out.wall.Round(100*time.Millisecond))
	t.Logf("baseline %s: %v", name, b.out)
}

// compare waits for baseline name, compares got with it, fails t on any
// difference and sets the row's extra time.
func compare(t *testing.T, rep *report, name string, got outcome) {
	b := baselineOf(name)
	select {
	case <-b.done:
	case <-time.After(10 * time.Minute):
		t.Fatalf("baseline %s did not finish", name)
	}
	if b.err != nil {
		t.Fatalf("baseline %s failed: %v", name, b.err)
	}
	rep.setExtra(got.wall - b.out.wall)
	if d := differences(got, b.out); len(d) > 0 {
		rep.note("differs from the fault-free run: %s", strings.Join(d, "; "))
		t.Errorf("differs from the fault-free run:\n  %s\ngot:        %v\nfault-free: %v", strings.Join(d, "\n  "), got, b.out)
	}
}
