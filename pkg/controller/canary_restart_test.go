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
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	first := start()
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

	start()
	g.Eventually(phaseOf(ns, name), release, poll).Should(Equal(serinv1.CanaryPhaseSucceeded))
	g.Expect(hooks.count("/load")).To(Equal(4), "one rollout webhook call per iteration")

	var events corev1.EventList
	g.Expect(k8sClient.List(context.Background(), &events, client.InNamespace(ns))).To(Succeed())
	iterations := map[string]int32{}
	for _, e := range events.Items {
		if e.InvolvedObject.Name == name && e.Reason == "Advanced" {
			iterations[e.Message] += max(e.Count, 1)
		}
	}
	want := map[string]int32{}
	for i := 1; i <= 4; i++ {
		want[fmt.Sprintf("Iteration %d of 4 of %s passed", i, name)] = 1
	}
	g.Expect(iterations).To(Equal(want), "each iteration ran exactly once")
}

// serinProcess builds the serin binary (with the given build tags) and
// returns a function that starts it, serving only the Canaries labelled
// restartShard=shard, with extra environment variables. Each process is
// killed at the end of the test; a failed test logs their output.
func serinProcess(t *testing.T, g Gomega, ns, shard string, tags ...string) func(environ ...string) *exec.Cmd {
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
	return func(environ ...string) *exec.Cmd {
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		g.Expect(err).NotTo(HaveOccurred())
		cmd := exec.Command(bin,
			"--kubeconfig="+env.KubeconfigPath,
			"--watch-label-selector="+restartShard+"="+shard,
			"--leader-election-namespace="+ns,
			"--leader-election-lease-duration=3s",
			"--leader-election-renew-deadline=2s",
			"--leader-election-retry-period=500ms",
			"--metrics-addr=0",
			"--health-addr=0",
			"--log-encoding=console",
		)
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
