package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// TestBinaryServesAndStopsOnSIGTERM builds the real binary, serves one
// background command and checks that SIGTERM kills it and exits 0.
func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	g := NewWithT(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "serin-tester")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "--listen-address", "127.0.0.1:0", "--log-level", "debug", "--enable-commands")
	cmd.Env = append(os.Environ(), tokenEnv+"=t0ken")
	stderr, err := cmd.StderrPipe()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmd.Start()).To(Succeed())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// The address is in the first log line; the rest of the log is kept
	// to check that the token never shows.
	logs := bufio.NewReader(stderr)
	first, err := logs.ReadString('\n')
	g.Expect(err).NotTo(HaveOccurred())
	m := regexp.MustCompile(`address=(\S+)`).FindStringSubmatch(first)
	g.Expect(m).NotTo(BeNil(), first)
	base := "http://" + m[1]
	var rest bytes.Buffer
	logsDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(&rest, logs)
		close(logsDone)
	}()

	resp, err := http.Get(base + "/healthz")
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))

	pidFile := filepath.Join(dir, "pid")
	req, err := http.NewRequest(http.MethodPost, base+"/", strings.NewReader(
		`{"name":"a","namespace":"ns","metadata":{"cmd":"sleep 30 & echo $! > `+pidFile+`; wait"}}`))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err = http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
	pid := readPID(t, pidFile)

	start := time.Now()
	g.Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	// The log ends when the process exits; Wait closes the pipe, so it
	// comes after the last line is read.
	g.Eventually(logsDone).WithTimeout(5 * time.Second).Should(BeClosed())
	g.Expect(cmd.Wait()).To(Succeed(), "exit status 0")
	g.Expect(time.Since(start)).To(BeNumerically("<", 4*time.Second))
	g.Eventually(func() bool { return processAlive(pid) }).WithTimeout(time.Second).Should(BeFalse(), "the command is killed on shutdown")
	g.Expect(first + rest.String()).NotTo(ContainSubstring("t0ken"))
	g.Expect(first).To(ContainSubstring("operator token"))
	g.Expect(rest.String()).To(ContainSubstring("stopped"))

	// Without a token, the first line says that every request is
	// refused, and every request is.
	bare := exec.Command(bin, "--listen-address", "127.0.0.1:0")
	bare.Env = append(os.Environ(), tokenEnv+"=")
	stderr, err = bare.StderrPipe()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bare.Start()).To(Succeed())
	t.Cleanup(func() { _ = bare.Process.Kill(); _ = bare.Wait() })
	first, err = bufio.NewReader(stderr).ReadString('\n')
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(first).To(ContainSubstring("level=ERROR"))
	g.Expect(first).To(ContainSubstring("EVERY REQUEST IS REFUSED with 401"))
	m = regexp.MustCompile(`address=(\S+)`).FindStringSubmatch(first)
	g.Expect(m).NotTo(BeNil(), first)
	resp, err = http.Post("http://"+m[1]+"/gate/check", "application/json", strings.NewReader(`{"name":"a","namespace":"ns"}`))
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
}

func TestRunRejectsBadFlags(t *testing.T) {
	g := NewWithT(t)
	g.Expect(run([]string{"--namespace-regexp", "("}, io.Discard)).To(MatchError(ContainSubstring("--namespace-regexp")))
	g.Expect(run([]string{"--log-level", "loud"}, io.Discard)).To(MatchError(ContainSubstring("--log-level")))
	g.Expect(run([]string{"--nope"}, io.Discard)).To(HaveOccurred())
}
