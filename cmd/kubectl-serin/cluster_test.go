package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/analysis"
	serinscheme "github.com/serin-dev/serin/pkg/apis/scheme"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

// cluster is an apiserver with the Serin CRDs and Canaries in given states;
// no controller runs, so the commands' requests stay as they wrote them.
type cluster struct {
	env *testenv.Env
	c   client.Client
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := testenv.StartForTest(t, testenv.Options{Mode: testenv.APIServer, CRDPaths: []string{"../../artifacts/crds"}})
	scheme := runtime.NewScheme()
	if err := serinscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"shop", "other"} {
		if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	return &cluster{env: env, c: c}
}

// canary creates a stepWeight 10 / maxWeight 50 Canary (5 steps,
// threshold 5, a metric and a webhook) with the given status.
func (k *cluster) canary(t *testing.T, ns, name string, st serinv1.CanaryStatus) *serinv1.Canary {
	t.Helper()
	c := &serinv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: serinv1.CanarySpec{
			TargetRef: serinv1.TargetReference{Kind: "Deployment", Name: name},
			Service:   serinv1.CanaryService{Port: 80},
			Analysis: serinv1.CanaryAnalysis{
				Interval: "1m", Threshold: 5, StepWeight: 10, MaxWeight: 50,
				Metrics: []serinv1.CanaryMetric{{
					Name: serinv1.MetricRequestSuccessRate, ThresholdRange: &serinv1.CanaryThresholdRange{Min: new(99.0)},
				}},
				Webhooks: []serinv1.CanaryWebhook{{Name: "approval", Type: serinv1.ConfirmPromotionHook, URL: "http://tester.test/gate/check"}},
			},
		},
	}
	if err := k.c.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	c.Status = st
	if err := k.c.Status().Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (k *cluster) get(t *testing.T, ns, name string) *serinv1.Canary {
	t.Helper()
	c := &serinv1.Canary{}
	if err := k.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// markHandled does what the controller does with a request: record its ID.
func (k *cluster) markHandled(t *testing.T, ns, name string) {
	t.Helper()
	c := k.get(t, ns, name)
	c.Status.LastHandledOperation = c.Annotations[serinv1.OperationIDAnnotation]
	if err := k.c.Status().Update(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

func inPhase(p serinv1.CanaryPhase, mods ...func(*serinv1.CanaryStatus)) serinv1.CanaryStatus {
	now := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	st := serinv1.CanaryStatus{
		Phase: p, LastAppliedSpec: "5d8f9c", LastPromotedSpec: "4b7e21",
		LastTransitionTime: now, LastIterationTime: now,
	}
	for _, m := range mods {
		m(&st)
	}
	return st
}

func (k *cluster) serin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return execute(t, "", append(args, "--kubeconfig", k.env.KubeconfigPath)...)
}

func TestClusterCommands(t *testing.T) {
	k := startCluster(t)
	measured := metav1.NewTime(time.Now().Add(-20 * time.Second))
	k.canary(t, "shop", "cart", inPhase(serinv1.CanaryPhaseProgressing, func(s *serinv1.CanaryStatus) {
		s.CanaryWeight, s.Iterations, s.FailedChecks = 20, 2, 1
		s.Metrics = []serinv1.MetricStatus{{Name: serinv1.MetricRequestSuccessRate, Value: new(98.5), Verdict: serinv1.MetricFailed, Message: "98.5 < 99", Time: measured}}
		s.History = []serinv1.DecisionRecord{
			{Time: measured, Revision: "5d8f9c", Phase: serinv1.CanaryPhaseProgressing, Weight: 20, Iteration: 2, Checks: "request-success-rate=no-data", Verdict: "Inconclusive", Action: "hold"},
			{Time: measured, Revision: "5d8f9c", Phase: serinv1.CanaryPhaseProgressing, Weight: 20, Iteration: 2, Checks: "request-success-rate=98.5(failed)", Verdict: "Failed", Action: "hold"},
		}
		s.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionUnknown, Reason: meta.ProgressingReason, Message: "analysing a new revision of cart", LastTransitionTime: s.LastTransitionTime}}
	}))
	k.canary(t, "shop", "checkout", inPhase(serinv1.CanaryPhaseSucceeded))
	k.canary(t, "shop", "search", inPhase(serinv1.CanaryPhaseFailed, func(s *serinv1.CanaryStatus) { s.FailedChecks, s.Iterations = 5, 1 }))
	k.canary(t, "shop", "frozen", inPhase(serinv1.CanaryPhaseProgressing, func(s *serinv1.CanaryStatus) { s.CanaryWeight, s.Iterations, s.Paused = 10, 1, true }))
	k.canary(t, "other", "cart", inPhase(serinv1.CanaryPhaseWaitingPromotion, func(s *serinv1.CanaryStatus) { s.CanaryWeight, s.Iterations = 50, 5 }))

	t.Run("get lists a namespace", func(t *testing.T) {
		out, errOut, code := k.serin(t, "get", "-n", "shop")
		if code != 0 {
			t.Fatalf("code %d: %s", code, errOut)
		}
		rows := table(out)
		want := [][]string{
			{"NAMESPACE", "NAME", "PHASE", "WEIGHT", "FAILED", "STEP", "AGE"},
			{"shop", "cart", "Progressing", "20", "1/5", "2/5"},
			{"shop", "checkout", "Succeeded", "0", "0/5", "0/5"},
			{"shop", "frozen", "Progressing(paused)", "10", "0/5", "1/5"},
			{"shop", "search", "Failed", "0", "5/5", "1/5"},
		}
		if len(rows) != len(want) {
			t.Fatalf("rows:\n%s", out)
		}
		for i, w := range want {
			if got := rows[i][:len(w)]; strings.Join(got, " ") != strings.Join(w, " ") {
				t.Errorf("row %d: %v, want %v", i, got, w)
			}
		}
	})

	t.Run("list -A lists every namespace", func(t *testing.T) {
		out, _, code := k.serin(t, "list", "-A")
		if code != 0 || !strings.Contains(out, "other") || !strings.Contains(out, "WaitingPromotion") || len(table(out)) != 6 {
			t.Errorf("code %d, output:\n%s", code, out)
		}
	})

	t.Run("get NAME shows one Canary", func(t *testing.T) {
		out, _, code := k.serin(t, "get", "cart", "-n", "other")
		if rows := table(out); code != 0 || len(rows) != 2 || rows[1][2] != "WaitingPromotion" || rows[1][5] != "5/5" {
			t.Errorf("code %d, output:\n%s", code, out)
		}
		_, errOut, code := k.serin(t, "get", "nothing", "-n", "shop")
		if code == 0 || !strings.Contains(errOut, "canary shop/nothing not found") {
			t.Errorf("a missing Canary: code %d, stderr %q", code, errOut)
		}
	})

	t.Run("get -w prints a row on every change", func(t *testing.T) {
		out := &syncBuffer{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan int)
		go func() {
			root := newRootCommand()
			root.SetArgs([]string{"get", "-w", "-n", "other", "--kubeconfig", k.env.KubeconfigPath})
			root.SetOut(out)
			root.SetErr(out)
			if err := root.ExecuteContext(ctx); err != nil {
				t.Error(err)
			}
			close(done)
		}()
		waitFor(t, func() bool { return len(table(out.String())) == 2 })
		c := k.get(t, "other", "cart")
		c.Status.Phase = serinv1.CanaryPhasePromoting
		if err := k.c.Status().Update(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return len(table(out.String())) == 3 })
		if rows := table(out.String()); rows[2][2] != "Promoting" {
			t.Errorf("the new row is %v", rows[2])
		}
		// A change no column shows prints nothing.
		c = k.get(t, "other", "cart")
		c.Status.LastIterationTime = metav1.NewTime(time.Now().Truncate(time.Second))
		if err := k.c.Status().Update(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		cancel()
		<-done
		if rows := table(out.String()); len(rows) != 3 {
			t.Errorf("output:\n%s", out.String())
		}
	})

	t.Run("status shows steps, metrics, conditions and events", func(t *testing.T) {
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: "shop", Name: "cart.1"},
			InvolvedObject: corev1.ObjectReference{Kind: serinv1.CanaryKind, Namespace: "shop", Name: "cart", APIVersion: serinv1.GroupVersion.String()},
			Type:           corev1.EventTypeNormal, Reason: "Advanced", Message: "Advancing cart canary weight to 20",
			LastTimestamp: metav1.Now(),
		}
		if err := k.c.Create(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := k.serin(t, "status", "cart", "-n", "shop")
		if code != 0 {
			t.Fatalf("code %d: %s", code, errOut)
		}
		if !regexp.MustCompile(`Progress deadline:\s+in (8m5\d|9m0)s`).MatchString(out) {
			t.Errorf("no time left to the progress deadline in\n%s", out)
		}
		lines := slices.Collect(func(yield func(string) bool) {
			for line := range strings.Lines(out) {
				if !yield(strings.Join(strings.Fields(line), " ")) {
					return
				}
			}
		})
		for _, want := range []string{
			"Phase: Progressing for ",
			"Failed checks: 1 of 5",
			"Next step: due",
			"✓ step 1 of 5: weight 10%",
			"> step 2 of 5: weight 20% <- now",
			"step 3 of 5: weight 30%",
			"step 5 of 5: weight 50%",
			"promotion",
			"request-success-rate 98.5 [99, +inf] Failed", "ago 98.5 < 99",
			"approval confirm-promotion - -",
			"5d8f9c Progressing 20 2 Inconclusive hold request-success-rate=no-data",
			"5d8f9c Progressing 20 2 Failed hold request-success-rate=98.5(failed)",
			"Ready Unknown Progressing",
			"Normal Advanced Advancing cart canary weight to 20",
		} {
			want = strings.Join(strings.Fields(want), " ")
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }) {
				t.Errorf("no %q in\n%s", want, out)
			}
		}
	})

	t.Run("promote writes the operation annotations", func(t *testing.T) {
		out, errOut, code := k.serin(t, "promote", "cart", "-n", "shop")
		if code != 0 {
			t.Fatalf("code %d: %s", code, errOut)
		}
		c := k.get(t, "shop", "cart")
		a := c.Annotations
		if a[serinv1.OperationAnnotation] != "promote" || a[serinv1.OperationIDAnnotation] == "" {
			t.Errorf("annotations %v", a)
		}
		if _, err := time.Parse(time.RFC3339Nano, a[serinv1.OperationIDAnnotation]); err != nil {
			t.Errorf("the operation ID is not the request time: %v", err)
		}
		if a[serinv1.OperationByAnnotation] == "" {
			t.Errorf("no %s annotation", serinv1.OperationByAnnotation)
		}
		if !strings.Contains(out, "promote requested for canary shop/cart (operation-id "+a[serinv1.OperationIDAnnotation]+")") {
			t.Errorf("stdout %q", out)
		}
		if c.Spec.Analysis.StepWeight != 10 || c.Generation != 1 {
			t.Errorf("the spec changed: generation %d", c.Generation)
		}
	})

	t.Run("abort replaces a pending promote, and a pending abort is not replaced", func(t *testing.T) {
		if _, errOut, code := k.serin(t, "abort", "cart", "-n", "shop"); code != 0 {
			t.Fatalf("code %d: %s", code, errOut)
		}
		abortID := k.get(t, "shop", "cart").Annotations[serinv1.OperationIDAnnotation]
		_, errOut, code := k.serin(t, "promote", "cart", "-n", "shop", "--full")
		if code == 0 || !strings.Contains(errOut, "cannot promote-full canary shop/cart: the abort requested at "+abortID+" is not handled yet") {
			t.Errorf("code %d, stderr %q", code, errOut)
		}
		if got := k.get(t, "shop", "cart").Annotations[serinv1.OperationAnnotation]; got != "abort" {
			t.Errorf("operation %q, want abort", got)
		}

		// Once handled, the next request is written.
		k.markHandled(t, "shop", "cart")
		if _, errOut, code := k.serin(t, "promote", "--full", "cart", "-n", "shop"); code != 0 {
			t.Fatalf("code %d: %s", code, errOut)
		}
		if got := k.get(t, "shop", "cart").Annotations[serinv1.OperationAnnotation]; got != "promote-full" {
			t.Errorf("operation %q, want promote-full", got)
		}
	})

	t.Run("an operation the phase does not allow is refused with the reason", func(t *testing.T) {
		for _, tt := range []struct{ args, want string }{
			{"promote checkout", "cannot promote canary shop/checkout (phase Succeeded): no release in flight: the phase is Succeeded"},
			{"abort checkout", "cannot abort canary shop/checkout (phase Succeeded): no release in flight"},
			{"promote search", "cannot promote canary shop/search (phase Failed): the analysis failed and was rolled back: retry it first"},
			{"retry cart", "cannot retry canary shop/cart (phase Progressing): only a Failed analysis can be retried"},
			{"promote frozen", "cannot promote canary shop/frozen (phase Progressing): the release is paused: resume it first"},
			{"pause frozen", "the release is already paused"},
			{"resume checkout", "the release is not paused"},
		} {
			before := k.get(t, "shop", strings.Fields(tt.args)[1]).ResourceVersion
			_, errOut, code := k.serin(t, append(strings.Fields(tt.args), "-n", "shop")...)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Errorf("%s: code %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
			}
			if after := k.get(t, "shop", strings.Fields(tt.args)[1]).ResourceVersion; after != before {
				t.Errorf("%s: a refused operation changed the Canary", tt.args)
			}
		}
	})

	t.Run("retry, pause and resume write their operation", func(t *testing.T) {
		for _, tt := range []struct{ op, name string }{{"retry", "search"}, {"resume", "frozen"}, {"pause", "cart"}} {
			if _, errOut, code := k.serin(t, tt.op, tt.name, "-n", "shop"); code != 0 {
				t.Errorf("%s %s: code %d: %s", tt.op, tt.name, code, errOut)
				continue
			}
			if got := k.get(t, "shop", tt.name).Annotations[serinv1.OperationAnnotation]; got != tt.op {
				t.Errorf("%s %s: operation annotation %q", tt.op, tt.name, got)
			}
		}
	})
}

// answered runs a command while answer plays the controller.
func (k *cluster) answered(t *testing.T, answer func(), args ...string) (stdout, stderr string, code int) {
	t.Helper()
	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result)
	go func() {
		out, errOut, code := k.serin(t, args...)
		done <- result{out, errOut, code}
	}()
	answer()
	r := <-done
	return r.stdout, r.stderr, r.code
}

func TestClusterWait(t *testing.T) {
	k := startCluster(t)
	k.canary(t, "shop", "cart", inPhase(serinv1.CanaryPhaseProgressing, func(s *serinv1.CanaryStatus) { s.CanaryWeight, s.Iterations = 10, 1 }))

	// The controller's part: record the request as handled and emit its
	// Event.
	answer := func(reason, format string) {
		waitFor(t, func() bool { return analysis.PendingOperation(k.get(t, "shop", "cart")) != nil })
		id := analysis.PendingOperation(k.get(t, "shop", "cart")).ID
		if err := k.c.Create(t.Context(), &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: "shop", GenerateName: "cart."},
			InvolvedObject: corev1.ObjectReference{Kind: serinv1.CanaryKind, Namespace: "shop", Name: "cart"},
			Type:           corev1.EventTypeWarning, Reason: reason, Message: fmt.Sprintf(format, id), LastTimestamp: metav1.Now(),
		}); err != nil {
			t.Fatal(err)
		}
		k.markHandled(t, "shop", "cart")
	}

	t.Run("a refusal by the controller fails the command", func(t *testing.T) {
		_, errOut, code := k.answered(t, func() {
			answer("OperationRefused", "promote by admin (request %s) refused: canary cart is not ready: 1 of 2 pods ready")
		}, "promote", "cart", "-n", "shop", "--wait", "--timeout", "20s")
		if code == 0 || !strings.Contains(errOut, "refused: canary cart is not ready: 1 of 2 pods ready") {
			t.Errorf("code %d, stderr %q", code, errOut)
		}
	})

	t.Run("what the controller did is printed", func(t *testing.T) {
		out, errOut, code := k.answered(t, func() {
			answer("OperationPause", "pause by admin (request %s): holding the release at weight 10")
		}, "pause", "cart", "-n", "shop", "--wait", "--timeout", "20s")
		if code != 0 || !strings.Contains(out, "holding the release at weight 10") || strings.Contains(out, "refused") {
			t.Errorf("code %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("no answer times out", func(t *testing.T) {
		_, errOut, code := k.serin(t, "abort", "cart", "-n", "shop", "--wait", "--timeout", "1s")
		if code == 0 || !strings.Contains(errOut, "did not handle the request within 1s") {
			t.Errorf("code %d, stderr %q", code, errOut)
		}
	})
}

// table splits the lines of a table into their cells.
func table(out string) [][]string {
	var rows [][]string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer a command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestClusterUndo(t *testing.T) {
	k := startCluster(t)
	c := k.canary(t, "shop", "cart", inPhase(serinv1.CanaryPhaseSucceeded, func(s *serinv1.CanaryStatus) { s.LastPromotedSpec = "rev3" }))
	for n, rev := range map[int64]string{1: "rev1", 2: "rev2", 3: "rev3"} {
		cr := &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: "shop", Name: "cart-primary-" + rev,
				Labels:          map[string]string{serinv1.KeptRevisionLabel: "cart"},
				Annotations:     map[string]string{serinv1.RevisionAnnotation: rev},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(c, serinv1.GroupVersion.WithKind("Canary"))},
			},
			Data:     runtime.RawExtension{Raw: []byte(`{}`)},
			Revision: n,
		}
		if err := k.c.Create(t.Context(), cr); err != nil {
			t.Fatal(err)
		}
	}
	// Not the Canary's: same label, no controller reference.
	if err := k.c.Create(t.Context(), &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "impostor", Labels: map[string]string{serinv1.KeptRevisionLabel: "cart"}, Annotations: map[string]string{serinv1.RevisionAnnotation: "evil"}},
		Data:       runtime.RawExtension{Raw: []byte(`{}`)}, Revision: 9,
	}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		args    []string
		want    string
		wantErr string
	}{
		{args: nil, want: "rev2"},
		{args: []string{"--to-revision", "1"}, want: "rev1"},
		{args: []string{"--to-revision", "9"}, wantErr: "no kept revision 9 (kept: 3, 2, 1)"},
	} {
		t.Run(strings.Join(append([]string{"undo"}, tt.args...), " "), func(t *testing.T) {
			_, errOut, code := k.serin(t, append([]string{"undo", "cart", "-n", "shop"}, tt.args...)...)
			if tt.wantErr != "" {
				if code == 0 || !strings.Contains(errOut, tt.wantErr) {
					t.Fatalf("code %d, stderr %q; want an error with %q", code, errOut, tt.wantErr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("code %d: %s", code, errOut)
			}
			a := k.get(t, "shop", "cart").Annotations
			if a[serinv1.OperationAnnotation] != "undo" || a[serinv1.OperationRevisionAnnotation] != tt.want {
				t.Errorf("annotations %v, want undo of %s", a, tt.want)
			}
			k.markHandled(t, "shop", "cart")
		})
	}
}
