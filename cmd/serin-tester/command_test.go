package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestBashSuccessAndFailure(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")

	code, body := ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": "echo hello", "logCmdOutput": "true"})
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(Equal("hello\n"))

	code, body = ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": "echo hello"})
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(BeEmpty(), "output only with logCmdOutput")

	code, body = ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": "echo token=s3cr3t >&2; exit 3"})
	g.Expect(code).To(Equal(http.StatusInternalServerError))
	g.Expect(body).To(ContainSubstring("exit status 3"))
	g.Expect(body).NotTo(ContainSubstring("s3cr3t"), "a failure returns no output without logCmdOutput")
	g.Expect(body).To(ContainSubstring("output withheld"))

	code, body = ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": "echo boom >&2; exit 3", "logCmdOutput": "true"})
	g.Expect(code).To(Equal(http.StatusInternalServerError))
	g.Expect(body).To(ContainSubstring("boom"))

	code, body = ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": "[[ a == a ]] && echo bash", "logCmdOutput": "true"})
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(Equal("bash\n"), "runs bash, not sh")
}

func TestBashTimeoutKillsProcessGroup(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	pidFile := filepath.Join(t.TempDir(), "pid")

	start := time.Now()
	code, body := ts.post(t, "/", "a", "ns", map[string]string{
		"type":    "bash",
		"cmd":     "sleep 5 & echo $! > " + pidFile + "; wait",
		"timeout": "500ms",
	})
	g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
	g.Expect(code).To(Equal(http.StatusInternalServerError))
	g.Expect(body).To(ContainSubstring("timed out"))
	pid := readPID(t, pidFile)
	g.Eventually(func() bool { return processAlive(pid) }).WithTimeout(time.Second).Should(BeFalse(), "sleep, in the group, is killed")
}

func TestCmdRunsInBackgroundOnce(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	marker := filepath.Join(t.TempDir(), "marker")
	// No type: Flagger's load tester hooks only carry cmd.
	md := map[string]string{"cmd": "echo run >> " + marker + "; sleep 3"}

	start := time.Now()
	code, body := ts.post(t, "/", "a", "ns", md)
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(body).To(ContainSubstring("started"))
	code, body = ts.post(t, "/", "a", "ns", md)
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(body).To(ContainSubstring("already running"))
	g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second), "cmd does not block on its 3s sleep")

	lines := func() int {
		b, _ := os.ReadFile(marker)
		return strings.Count(string(b), "\n")
	}
	g.Eventually(lines).WithTimeout(2 * time.Second).Should(Equal(1))
	g.Consistently(lines).WithTimeout(300 * time.Millisecond).Should(Equal(1))
	g.Expect(ts.taskCount(t, typeCmd, outcomeAccepted)).To(Equal(1.0))
	g.Expect(ts.taskCount(t, typeCmd, outcomeDuplicate)).To(Equal(1.0))

	code, _ = ts.post(t, "/", "b", "ns", md)
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Eventually(lines).WithTimeout(2*time.Second).Should(Equal(2), "another canary runs its own")
}

func TestCmdTimeoutKillsProcessGroupAndAllowsRerun(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	pidFile := filepath.Join(t.TempDir(), "pid")
	md := map[string]string{"type": "cmd", "cmd": "sleep 5 & echo $! > " + pidFile + "; wait", "timeout": "300ms"}

	code, _ := ts.post(t, "/", "a", "ns", md)
	g.Expect(code).To(Equal(http.StatusAccepted))
	pid := readPID(t, pidFile)
	g.Eventually(func() bool { return processAlive(pid) }).WithTimeout(2 * time.Second).Should(BeFalse())
	g.Eventually(func() float64 { return ts.taskCount(t, typeCmd, outcomeTimeout) }).WithTimeout(2 * time.Second).Should(Equal(1.0))

	code, body := ts.post(t, "/", "a", "ns", md)
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(body).To(ContainSubstring("started"), "a finished command may run again")
}

func TestShutdownKillsBackgroundCommands(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	pidFile := filepath.Join(t.TempDir(), "pid")

	code, _ := ts.post(t, "/", "a", "ns", map[string]string{"cmd": "sleep 30 & echo $! > " + pidFile + "; wait"})
	g.Expect(code).To(Equal(http.StatusAccepted))
	pid := readPID(t, pidFile)
	g.Expect(processAlive(pid)).To(BeTrue())

	start := time.Now()
	g.Expect(ts.shutdown(t.Context())).To(Succeed())
	g.Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
	g.Eventually(func() bool { return processAlive(pid) }).WithTimeout(time.Second).Should(BeFalse())

	code, _ = ts.post(t, "/", "a", "ns", map[string]string{"cmd": "true"})
	g.Expect(code).To(Equal(http.StatusServiceUnavailable), "no task starts after shutdown")
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	g := NewWithT(t)
	var b tailBuffer
	_, _ = b.Write([]byte("head"))
	_, _ = b.Write([]byte(strings.Repeat("x", outputLimit-2)))
	_, _ = b.Write([]byte("tail"))
	out := b.Bytes()
	g.Expect(out).To(HaveLen(outputLimit))
	g.Expect(string(out)).To(HaveSuffix("xtail"))
	g.Expect(string(out)).NotTo(ContainSubstring("head"))
}
