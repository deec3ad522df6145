//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// TestChaos runs the scenarios that fault only their own controllers in
// parallel, then those that fault shared components (serin-tester,
// Prometheus, the API server, etcd) one after another.
func TestChaos(t *testing.T) {
	t.Run("parallel", func(t *testing.T) {
		t.Run("baseline/standard", func(t *testing.T) {
			t.Parallel()
			runBaseline(t, "standard", "chaos-baseline-standard", standard, nil)
		})
		t.Run("baseline/prometheus", func(t *testing.T) {
			t.Parallel()
			runBaseline(t, "prometheus", "chaos-baseline-prometheus", prometheusScript(5), nil)
		})
		for _, k := range kills {
			t.Run("kill/"+k.label(), func(t *testing.T) { testKill(t, k) })
		}
		t.Run("failover/kill-leader", func(t *testing.T) { testFailover(t, false) })
		t.Run("failover/pause-leader", func(t *testing.T) { testFailover(t, true) })
		t.Run("webhooks", testWebhooks)
	})
	t.Run("sequential", func(t *testing.T) {
		t.Run("serin-tester/restart-mid-gate", testTesterRestart)
		t.Run("prometheus/short-outage", testPrometheusShortOutage)
		t.Run("prometheus/long-outage", testPrometheusLongOutage)
		t.Run("kube-apiserver/restart", func(t *testing.T) { testControlPlaneRestart(t, "kube-apiserver") })
		t.Run("etcd/restart", func(t *testing.T) { testControlPlaneRestart(t, "etcd") })
		t.Run("watch/sever-during-promotion", testSever)
	})
}

// A kill: SIGKILL the controller when the Canary enters phase, or, with
// inject, have the faultinject build exit right after that action, or,
// with injectStored, right after the status write that stores a decision
// with an Event of that reason, before the Event goes out.
type kill struct {
	phase        serinv1.CanaryPhase
	when         func(snapshot) bool
	inject       string
	injectStored string
}

// label names the kill's scenario.
func (k kill) label() string {
	if k.injectStored != "" {
		return string(k.phase) + "-stored-" + k.injectStored
	}
	return string(k.phase)
}

// injection is the environment of the faultinject build and the exit it
// announces, for a kill by injection.
func (k kill) injection() (env []string, exit string) {
	switch {
	case k.inject != "":
		return []string{"SERIN_FAULT_EXIT_AFTER=" + k.inject}, "fault injection: exiting after " + k.inject
	case k.injectStored != "":
		return []string{"SERIN_FAULT_EXIT_AFTER_STORED=" + k.injectStored}, "fault injection: exiting after storing " + k.injectStored
	}
	return nil, ""
}

func inPhase(p serinv1.CanaryPhase) func(snapshot) bool {
	return func(s snapshot) bool { return s.phase == p }
}

var kills = []kill{
	{phase: serinv1.CanaryPhaseInitializing, when: inPhase(serinv1.CanaryPhaseInitializing)},
	{phase: serinv1.CanaryPhaseInitialized, when: inPhase(serinv1.CanaryPhaseInitialized)},
	{phase: serinv1.CanaryPhaseWaiting, when: inPhase(serinv1.CanaryPhaseWaiting)},
	{phase: serinv1.CanaryPhaseProgressing, when: func(s snapshot) bool { return s.phase == serinv1.CanaryPhaseProgressing && s.weight > 0 }},
	// Between the write that stores the first weight step and its
	// Advanced Event: the successor records the Event.
	{phase: serinv1.CanaryPhaseProgressing, injectStored: "Advanced"},
	{phase: serinv1.CanaryPhaseWaitingPromotion, when: inPhase(serinv1.CanaryPhaseWaitingPromotion)},
	{phase: serinv1.CanaryPhasePromoting, inject: "PromotePrimary"},
	{phase: serinv1.CanaryPhaseFinalising, when: inPhase(serinv1.CanaryPhaseFinalising)},
	{phase: serinv1.CanaryPhaseFailed, when: inPhase(serinv1.CanaryPhaseFailed)},
}

func canaryKey(ns string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: appName} }

func storedPhase(ns string) serinv1.CanaryPhase {
	var c serinv1.Canary
	if err := st.Client.Get(context.Background(), canaryKey(ns), &c); err != nil {
		return serinv1.CanaryPhase("unreadable: " + err.Error())
	}
	return c.Status.Phase
}

// testKill runs the standard release and kills its controller once, in
// k.phase; the supervisor starts it again.
func testKill(t *testing.T, k kill) {
	t.Parallel()
	rep := newReport(t)
	ns := "chaos-kill-" + strings.ToLower(k.label())
	r := newRelease(t, ns, standard)
	env, wantExit := k.injection()
	ctl := startController(t, "a", controllerOptions{shard: r.shard(), leaseNS: ns, env: env})
	var (
		once   sync.Once
		mu     sync.Mutex
		detail string
	)
	killed := make(chan struct{})
	do := func(s snapshot, when string) {
		ctl.Kill()
		mu.Lock()
		detail = fmt.Sprintf("SIGKILL %s %s (weight %d), stored phase then %s", when, s.phase, s.weight, storedPhase(ns))
		mu.Unlock()
		appendLine(ctl.log, "=== chaos: "+detail)
		close(killed)
	}
	if wantExit == "" {
		r.rec.on(func(s snapshot) {
			if !k.when(s) {
				return
			}
			once.Do(func() { do(s, "on entering") })
		})
	} else {
		first := ctl.process()
		go func() {
			<-first.Done()
			img, _ := st.Image(context.Background(), ns, appName+"-primary")
			mu.Lock()
			detail = fmt.Sprintf("faultinject exit after %s%s, stored phase then %s, primary %s", k.inject, k.injectStored, storedPhase(ns), img)
			mu.Unlock()
			close(killed)
		}()
	}
	if err := r.run(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-killed:
	default:
		t.Fatalf("the controller was never killed in %s", k.phase)
	}
	// The restarted controller has had the time to take the Lease and
	// look at the Canary again.
	deadline := time.Now().Add(30 * time.Second)
	for ctl.startCount() < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(6 * time.Second)
	mu.Lock()
	rep.note("%s", detail)
	mu.Unlock()
	exits := ctl.unexpectedExits()
	if wantExit != "" {
		if len(exits) != 1 || !strings.Contains(exits[0], wantExit) {
			t.Errorf("want one exit by %q, got %q", wantExit, exits)
		}
		if k.phase == serinv1.CanaryPhasePromoting && (!strings.Contains(detail, "stored phase then "+string(serinv1.CanaryPhasePromoting)) || !strings.Contains(detail, "primary "+v2)) {
			t.Errorf("the fault did not land between the primary write and the status patch: %s", detail)
		}
	} else if len(exits) > 0 {
		t.Errorf("the controller exited on its own: %q", exits)
	}
	got, err := r.outcome()
	if err != nil {
		t.Fatal(err)
	}
	compare(t, rep, "standard", got)
}

// testFailover runs the standard release on two replicas with leader
// election. When the first weight step is taken, the leader is SIGKILLed,
// or (pause) SIGSTOPped past its Lease until the other replica has taken
// over and written the Canary, then SIGCONTed.
func testFailover(t *testing.T, pause bool) {
	t.Parallel()
	rep := newReport(t)
	ns := "chaos-failover-kill"
	if pause {
		ns = "chaos-failover-pause"
	}
	ctx := t.Context()
	r := newRelease(t, ns, standard)
	opts := controllerOptions{shard: r.shard(), leaseNS: ns}
	a := startController(t, "a", opts)
	idA, err := waitLeaseHolder(ctx, ns, "", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b := startController(t, "b", opts)
	replica := func(holder string) *controller {
		if holder == idA {
			return a
		}
		return b
	}

	var (
		once     sync.Once
		mu       sync.Mutex
		detail   string
		faultErr error
	)
	faulted := make(chan struct{})
	// fault runs 3s into the first weight step (mid-step, between two
	// checks), off the recorder's goroutine.
	fault := func() {
		defer close(faulted)
		time.Sleep(3 * time.Second)
		holder := leaseHolder(ctx, ns)
		leader := replica(holder)
		start := time.Now()
		if !pause {
			leader.Kill()
			appendLine(leader.log, "=== chaos: SIGKILL (leader) 3s into weight 25")
			next, err := waitLeaseHolder(ctx, ns, holder, 30*time.Second)
			mu.Lock()
			defer mu.Unlock()
			faultErr = err
			detail = fmt.Sprintf("SIGKILL leader %s 3s into weight 25; %s took the Lease %v later", leader.name, replica(next).name, time.Since(start).Round(100*time.Millisecond))
			return
		}
		p := leader.process()
		rv := r.rec.last().rv
		leader.Pause()
		appendLine(leader.log, "=== chaos: SIGSTOP (leader) 3s into weight 25")
		next, err := waitLeaseHolder(ctx, ns, holder, 30*time.Second)
		if err != nil {
			mu.Lock()
			faultErr = err
			mu.Unlock()
			leader.Resume(p)
			return
		}
		tookOver := time.Since(start)
		// Until the new leader has written the Canary.
		for i := 0; i < 300 && r.rec.last().rv == rv; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		wrote := r.rec.last().rv != rv
		resumed := time.Now()
		logSize := fileSize(leader.log)
		leader.Resume(p)
		appendLine(leader.log, "=== chaos: SIGCONT")
		exited := "did not exit within 30s"
		select {
		case <-p.Done():
			exited = fmt.Sprintf("exited %v after SIGCONT", time.Since(resumed).Round(100*time.Millisecond))
		case <-time.After(30 * time.Second):
		}
		after := readFrom(leader.log, logSize)
		mu.Lock()
		defer mu.Unlock()
		detail = fmt.Sprintf("SIGSTOP leader %s 3s into weight 25; %s took the Lease after %v (new leader wrote the Canary meanwhile: %v); paused replica %s; conflicts it logged after SIGCONT: %d",
			leader.name, replica(next).name, tookOver.Round(100*time.Millisecond), wrote, exited,
			strings.Count(after, "the object has been modified")+strings.Count(after, "Conflict"))
	}
	r.rec.on(func(s snapshot) {
		if s.phase != serinv1.CanaryPhaseProgressing || s.weight != 25 {
			return
		}
		once.Do(func() { go fault() })
	})
	if err := r.run(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-faulted:
	case <-time.After(time.Minute):
		t.Fatal("the fault never completed")
	}
	mu.Lock()
	rep.note("%s", detail)
	if faultErr != nil {
		t.Error(faultErr)
	}
	mu.Unlock()
	for _, c := range []*controller{a, b} {
		exits := c.unexpectedExits()
		if pause {
			// The paused replica exits once it sees it lost the Lease;
			// nothing else may.
			for _, e := range exits {
				if !strings.Contains(e, "leader") {
					t.Errorf("replica %s exited: %s", c.name, e)
				}
			}
		} else if len(exits) > 0 {
			t.Errorf("replica %s exited on its own: %q", c.name, exits)
		}
	}
	got, err := r.outcome()
	if err != nil {
		t.Fatal(err)
	}
	compare(t, rep, "standard", got)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func readFrom(path string, off int64) string {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < off {
		return ""
	}
	return string(data[off:])
}
