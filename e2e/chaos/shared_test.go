//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/stack"
	"github.com/serin-dev/serin/pkg/testharness/faultproxy"
)

// prometheusScript is one release of five weight steps of 10%, long
// enough for an outage in the middle, with limit intervals in a row
// without a verdict before one counts as a failed check.
func prometheusScript(limit int) script {
	return script{final: serinv1.CanaryPhaseSucceeded, canary: func(c *serinv1.Canary) {
		c.Spec.Analysis.StepWeight, c.Spec.Analysis.MaxWeight = 10, 50
		c.Spec.Analysis.ConsecutiveErrorLimit = &limit
	}}
}

// atWeight runs fault once, in its own goroutine, when the Canary is
// Progressing at weight w; done is closed when it returns.
func atWeight(r *release, w int, fault func(snapshot)) (done chan struct{}) {
	var once sync.Once
	done = make(chan struct{})
	r.rec.on(func(s snapshot) {
		if s.phase == serinv1.CanaryPhaseProgressing && s.weight == w {
			once.Do(func() {
				go func() {
					defer close(done)
					fault(s)
				}()
			})
		}
	})
	return done
}

func waitFault(t *testing.T, done chan struct{}) {
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the fault never ran")
	}
}

// testTesterRestart restarts serin-tester (SIGKILL, 5s down) as the
// standard release enters WaitingPromotion: the gate's calls get no
// answer, its state is lost; the script opens it again once serin-tester
// is back, and the release ends as without the fault.
func testTesterRestart(t *testing.T) {
	rep := newReport(t)
	ns := "chaos-tester-restart"
	r := newRelease(t, ns, standard)
	startController(t, "a", controllerOptions{shard: r.shard(), leaseNS: ns})
	var once sync.Once
	done := make(chan struct{})
	var restartErr error
	r.rec.on(func(s snapshot) {
		if s.phase == serinv1.CanaryPhaseWaitingPromotion {
			once.Do(func() {
				go func() {
					defer close(done)
					restartErr = st.RestartTester(context.Background(), 5*time.Second)
				}()
			})
		}
	})
	if err := r.run(); err != nil {
		t.Fatal(err)
	}
	waitFault(t, done)
	if restartErr != nil {
		t.Fatal(restartErr)
	}
	rep.note("serin-tester SIGKILLed on entering WaitingPromotion, back 5s later")
	got, err := r.outcome()
	if err != nil {
		t.Fatal(err)
	}
	compare(t, rep, "standard", got)
}

// testPrometheusShortOutage stops Prometheus for 12s in the middle of the
// analysis: with the scrapes' gap after its restart, 1 to 3 intervals
// without data, fewer than the limit (5). The analysis holds, counts no
// failed check and ends as without the outage.
func testPrometheusShortOutage(t *testing.T) {
	rep := newReport(t)
	ns := "chaos-prometheus-short"
	r := newRelease(t, ns, prometheusScript(5))
	startController(t, "a", controllerOptions{shard: r.shard(), leaseNS: ns})
	var faultErr error
	done := atWeight(r, 20, func(snapshot) {
		if faultErr = st.Prometheus.Stop(); faultErr != nil {
			return
		}
		time.Sleep(12 * time.Second)
		faultErr = st.Prometheus.Restart(context.Background())
	})
	if err := r.run(); err != nil {
		t.Fatal(err)
	}
	waitFault(t, done)
	if faultErr != nil {
		t.Fatal(faultErr)
	}
	errs := r.rec.maxOf(func(s snapshot) int { return s.metricErrors[serinv1.MetricRequestSuccessRate] })
	rep.note("Prometheus down 12s at weight 20; intervals without data counted: %d", errs)
	got, err := r.outcome()
	if err != nil {
		t.Fatal(err)
	}
	if errs == 0 {
		t.Error("the checks never saw the outage")
	}
	compare(t, rep, "prometheus", got)
}

// testPrometheusLongOutage keeps Prometheus down from weight 20 on, past
// the limit (2 intervals) twice: each run of 2 intervals without data is
// one failed check, so the release fails, never promotes, and the traffic
// goes back to the primary.
func testPrometheusLongOutage(t *testing.T) {
	rep := newReport(t)
	ns := "chaos-prometheus-long"
	s := prometheusScript(2)
	s.final = serinv1.CanaryPhaseFailed
	r := newRelease(t, ns, s)
	startController(t, "a", controllerOptions{shard: r.shard(), leaseNS: ns})
	var (
		faultErr error
		downAt   time.Time
	)
	done := atWeight(r, 20, func(snapshot) {
		downAt = time.Now()
		if faultErr = st.Prometheus.Stop(); faultErr != nil {
			return
		}
		// Until the release has failed (or gave up waiting).
		_, _ = r.rec.waitPhase(context.Background(), serinv1.CanaryPhaseFailed, 1, 3*time.Minute)
		faultErr = st.Prometheus.Restart(context.Background())
	})
	runErr := r.run()
	waitFault(t, done)
	if runErr != nil {
		t.Fatal(runErr)
	}
	if faultErr != nil {
		t.Fatal(faultErr)
	}
	got, err := r.outcome()
	if err != nil {
		t.Fatal(err)
	}
	last := r.rec.last()
	errs := r.rec.maxOf(func(s snapshot) int { return s.metricErrors[serinv1.MetricRequestSuccessRate] })
	maxWeight := slices.Max(got.weights)
	rep.note("Prometheus down from weight 20: %s %v later, failed checks %d, intervals without data %d, highest weight %d",
		got.phase, r.ended.Sub(downAt).Round(100*time.Millisecond), last.failedChecks, errs, maxWeight)
	if got.phase != serinv1.CanaryPhaseFailed {
		t.Errorf("ended %s, want Failed", got.phase)
	}
	if len(got.inconsistent) > 0 {
		t.Errorf("stored versions out of order: %v", got.inconsistent)
	}
	if slices.Contains(got.phases, serinv1.CanaryPhasePromoting) {
		t.Errorf("promoted without data: %v", got.phases)
	}
	if last.failedChecks < r.canary.Spec.Analysis.Threshold {
		t.Errorf("failed checks %d, want the threshold %d", last.failedChecks, r.canary.Spec.Analysis.Threshold)
	}
	if maxWeight > 30 {
		t.Errorf("the weight went on to %d without data", maxWeight)
	}
	if got.primaryImage != stack.AppImage || got.traffic != 0 {
		t.Errorf("primary %s with %d%% on the canary after the rollback", got.primaryImage, got.traffic)
	}
	b := baselineOf("prometheus")
	<-b.done
	rep.setExtra(got.wall - b.out.wall)
}

// testControlPlaneRestart restarts kube-apiserver or etcd (5s down) in the
// middle of the analysis, 3s into a weight step. The controller keeps
// running or exits (its supervisor starts it again); the release ends as without the restart,
// with no failed check counted for the API server's absence.
func testControlPlaneRestart(t *testing.T, component string) {
	rep := newReport(t)
	ns := "chaos-restart-" + component
	r := newRelease(t, ns, prometheusScript(5))
	ctl := startController(t, "a", controllerOptions{shard: r.shard(), leaseNS: ns})
	var faultErr error
	var took time.Duration
	done := atWeight(r, 20, func(snapshot) {
		time.Sleep(3 * time.Second)
		start := time.Now()
		faultErr = st.Env.RestartComponent(context.Background(), component, 5*time.Second)
		took = time.Since(start)
	})
	if err := r.run(); err != nil {
		t.Fatal(err)
	}
	waitFault(t, done)
	if faultErr != nil {
		t.Fatal(faultErr)
	}
	exits := ctl.unexpectedExits()
	rep.note("%s down 5s from 3s into weight 20 (back and ready after %v); controller exits: %d", component, took.Round(100*time.Millisecond), len(exits))
	for i, e := range exits {
		if i == 3 {
			t.Logf("... and %d more", len(exits)-i)
			break
		}
		t.Logf("controller exit: %s", e)
	}
	got, err := r.outcome()
	if err != nil {
		t.Fatal(err)
	}
	compare(t, rep, "prometheus", got)
}

// testSever has the controller reach the API server through a TCP proxy
// and severs all its connections as the promotion starts and again as it
// finalises: it re-lists, re-watches and finishes as without the fault.
func testSever(t *testing.T) {
	rep := newReport(t)
	ns := "chaos-sever"
	p, err := faultproxy.New(st.Env.KubeAPIServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	kubeconfig, err := st.Env.KubeconfigVia(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	r := newRelease(t, ns, prometheusScript(5))
	ctl := startController(t, "a", controllerOptions{shard: r.shard(), leaseNS: ns, kubeconfig: kubeconfig})
	var (
		mu      sync.Mutex
		severed []string
	)
	r.rec.on(func(s snapshot) {
		if s.phase != serinv1.CanaryPhasePromoting && s.phase != serinv1.CanaryPhaseFinalising {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if slices.Contains(severed, string(s.phase)) {
			return
		}
		n := p.Connections()
		p.Sever()
		severed = append(severed, string(s.phase))
		severed = append(severed, fmt.Sprint(n))
	})
	if err := r.run(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	rep.note("severed the controller's connections (count) on entering: %v", severed)
	if len(severed) < 2 {
		t.Errorf("never severed during the promotion: %v", severed)
	}
	mu.Unlock()
	if exits := ctl.unexpectedExits(); len(exits) > 0 {
		rep.note("controller exits: %d", len(exits))
		for _, e := range exits {
			t.Logf("controller exit: %s", e)
		}
	}
	got, err := r.outcome()
	if err != nil {
		t.Fatal(err)
	}
	compare(t, rep, "prometheus", got)
}
