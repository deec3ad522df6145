package controller_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/alerts"
	"github.com/serin-dev/serin/pkg/analysis"
	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"
)

// restartShard labels the Canary of the restart test: the serin binary
// under test watches only it, and the in-process manager ignores it.
const restartShard = "serin.dev/test-shard"

// TestCanaryReconciler_ResumesAfterRestart kills the real controller
// process in the middle of an analysis and starts it again: the analysis
// resumes at the same iteration, and no step is repeated or skipped.
func TestCanaryReconciler_ResumesAfterRestart(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "resumed"
	hooks := newHookServer(t, 200)
	start := serinProcess(t, g, ns, "restart")
	first := start(nil)
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Labels = map[string]string{restartShard: "restart"}
		c.Spec.Analysis.Iterations = 4
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "load", URL: hooks.URL + "/load"}}
	})

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(func() int { return get(g, ns, name, &serinv1.Canary{}).Status.Iterations }, release, poll).Should(Equal(2))
	// Between two iterations: the next one is an interval away.
	g.Expect(first.Process.Signal(syscall.SIGKILL)).To(Succeed())
	_ = first.Wait()
	g.Expect(hooks.count("/load")).To(Equal(2))

	start(nil)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(hooks.count("/load")).To(Equal(4), "one rollout webhook call per iteration")

	g.Expect(announcedIterations(g, ns, name)).To(Equal(eachIterationOnce(name, 4)), "each iteration ran exactly once")
}

// announcedIterations counts the Canary's "Advanced" Events by message.
func announcedIterations(g Gomega, ns, name string) map[string]int32 {
	var events corev1.EventList
	g.Expect(k8sClient.List(context.Background(), &events, client.InNamespace(ns))).To(Succeed())
	announced := map[string]int32{}
	for _, e := range events.Items {
		if e.InvolvedObject.Name == name && e.Reason == "Advanced" {
			announced[e.Message] += max(e.Count, 1)
		}
	}
	return announced
}

// eachIterationOnce is what announcedIterations returns for an analysis of
// n iterations that announced each once.
func eachIterationOnce(name string, n int) map[string]int32 {
	want := map[string]int32{}
	for i := 1; i <= n; i++ {
		want[fmt.Sprintf("Iteration %d of %d of %s passed", i, n, name)] = 1
	}
	return want
}

// serinProcess builds the serin binary (with the given build tags) and
// returns a function that starts it, serving only the Canaries labelled
// restartShard=shard, with extra environment variables and flags. Each process is
// killed at the end of the test; a failed test logs their output.
func serinProcess(t *testing.T, g Gomega, ns, shard string, tags ...string) func(environ []string, flags ...string) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "serin")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	if out, err := exec.Command("go", append(args, "../../cmd/serin")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	logPath := filepath.Join(t.TempDir(), "serin.log")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("controller log:\n%s", out)
		}
	})
	return func(environ []string, flags ...string) *exec.Cmd {
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		g.Expect(err).NotTo(HaveOccurred())
		cmd := exec.Command(bin, append([]string{
			"--kubeconfig=" + env.KubeconfigPath,
			"--watch-label-selector=" + restartShard + "=" + shard,
			"--leader-election-namespace=" + ns,
			"--leader-election-lease-duration=3s",
			"--leader-election-renew-deadline=2s",
			"--leader-election-retry-period=500ms",
			"--metrics-addr=0",
			"--health-addr=0",
			"--log-encoding=console",
		}, flags...)...)
		cmd.Env = append(os.Environ(), environ...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		g.Expect(cmd.Start()).To(Succeed())
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logFile.Close()
		})
		return cmd
	}
}

// TestCanaryReconciler_EventsSurviveACrashAfterTheStatusWrite: the
// controller dies right after it stored the decision that starts a release
// and before that decision's Event and alert went out. The controller
// started again records the Event once and sends the alert once; the rest
// of the release is announced once as well.
func TestCanaryReconciler_EventsSurviveACrashAfterTheStatusWrite(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, name := newNamespace(t), "announced"
	receiver := newAlertReceiver(t)
	create(t, &serinv1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ops"},
		Spec:       serinv1.AlertProviderSpec{Type: string(alerts.TypeGeneric), Address: receiver.URL + "/generic"},
	})
	start := serinProcess(t, g, ns, "announce", "faultinject")
	first := start([]string{"SERIN_FAULT_EXIT_AFTER_STORED=" + analysis.ReasonNewRevision})
	exited := make(chan struct{})
	go func() {
		_ = first.Wait()
		close(exited)
	}()
	initialized(t, g, ns, name, func(c *serinv1.Canary) {
		c.Labels = map[string]string{restartShard: "announce"}
		c.Spec.Analysis.Iterations = 2
		c.Spec.Analysis.Alerts = []serinv1.CanaryAlert{{Name: "ops", ProviderRef: serinv1.CrossNamespaceObjectReference{Name: "ops"}}}
	})

	setImage(g, ns, name, "example.com/app:v2")
	g.Eventually(exited, release, poll).Should(BeClosed())
	g.Expect(phaseOf(ns, name)()).To(Equal(serinv1.CanaryPhaseProgressing), "the decision was stored")
	g.Expect(events(g, ns, name, analysis.ReasonNewRevision)).To(BeEmpty(), "the crash came before the Event")

	start(nil)
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Eventually(func() []string { return events(g, ns, name, analysis.ReasonSucceeded) }, eventWait, poll).Should(HaveLen(1))
	g.Expect(events(g, ns, name, analysis.ReasonNewRevision)).To(HaveLen(1))
	g.Expect(announcedIterations(g, ns, name)).To(Equal(eachIterationOnce(name, 2)))
	alertsOf := func(reason string) int {
		messages, _ := receiver.received()
		n := 0
		for _, m := range messages {
			if strings.Contains(m.Text, reason) {
				n++
			}
		}
		return n
	}
	g.Eventually(func() int { return alertsOf("New revision of") }, eventWait, poll).Should(Equal(1))
	g.Expect(alertsOf("New revision of")).To(Equal(1))
}
