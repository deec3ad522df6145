package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

const (
	defaultCmdTimeout  = time.Hour
	maxCmdTimeout      = 24 * time.Hour
	defaultBashTimeout = time.Minute
	// maxBashTimeout keeps a blocking request within taskTimeout.
	maxBashTimeout = 10 * time.Minute
	// outputLimit is how much of a command's output is kept: its tail.
	outputLimit = 64 << 10
	// waitDelay bounds how long a killed command's output pipes may stay
	// open (held by an orphan outside the group, say) before Wait gives up.
	waitDelay = time.Second
)

// runCommand runs shell -c command in a process group of its own. When ctx
// ends, the whole group is killed, so that nothing the command started
// outlives it; whatever is left of the group when the shell exits is killed
// too.
func runCommand(ctx context.Context, shell, command string, out *tailBuffer) error {
	c := exec.CommandContext(ctx, shell, "-c", command)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = waitDelay
	c.Stdout, c.Stderr = out, out
	if err := c.Start(); err != nil {
		return err
	}
	err := c.Wait()
	_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	return err
}

// commandOutcome names how a command run with context ctx ended.
func commandOutcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return outcomeSuccess
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return outcomeTimeout
	case ctx.Err() != nil:
		return outcomeCanceled
	default:
		return outcomeFailure
	}
}

// runBash runs metadata.cmd with bash and answers when it has exited: 200
// on exit status 0, 500 otherwise.
func (s *server) runBash(w http.ResponseWriter, r *http.Request, p payload) error {
	command := p.Metadata["cmd"]
	if command == "" {
		return badRequest("metadata.cmd is required for type bash")
	}
	timeout, err := durationValue(p.Metadata, "timeout", defaultBashTimeout, maxBashTimeout)
	if err != nil {
		return err
	}
	logOutput, err := boolValue(p.Metadata, "logCmdOutput")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	// Shutdown must kill the command even though it runs for a request.
	defer context.AfterFunc(s.ctx, cancel)()

	var out tailBuffer
	runErr := runCommand(ctx, "bash", command, &out)
	outcome := commandOutcome(ctx, runErr)
	s.metrics.task(typeBash, outcome)
	s.log.Info("bash command finished", "canary", p.canaryKey(), "outcome", outcome)
	// The output goes back (to the controller, and from there to Events
	// and alerts) only when asked for: commands print tokens.
	output := "(output withheld: set logCmdOutput: \"true\" to return it)"
	if logOutput {
		output = string(out.Bytes())
	}
	switch outcome {
	case outcomeSuccess:
		if logOutput {
			_, _ = w.Write(out.Bytes())
		}
	case outcomeTimeout:
		http.Error(w, fmt.Sprintf("command timed out after %s\n%s", timeout, output), http.StatusInternalServerError)
	case outcomeCanceled:
		http.Error(w, fmt.Sprintf("command canceled (tester shutting down or client gone)\n%s", output), http.StatusServiceUnavailable)
	default:
		http.Error(w, fmt.Sprintf("command failed: %v\n%s", runErr, output), http.StatusInternalServerError)
	}
	return nil
}

// runBackgroundCmd starts metadata.cmd with sh and answers 202 at once.
// While a command runs, the same command for the same canary is not
// started again: Serin calls its webhooks on every analysis tick.
func (s *server) runBackgroundCmd(w http.ResponseWriter, p payload) error {
	command := p.Metadata["cmd"]
	if command == "" {
		return badRequest("metadata.cmd is required for type cmd")
	}
	timeout, err := durationValue(p.Metadata, "timeout", defaultCmdTimeout, maxCmdTimeout)
	if err != nil {
		return err
	}
	key := p.canaryKey() + "\x00" + command

	s.mu.Lock()
	_, dup := s.running[key]
	if !dup {
		s.running[key] = struct{}{}
	}
	s.mu.Unlock()
	if dup {
		s.metrics.task(typeCmd, outcomeDuplicate)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("command already running\n"))
		return nil
	}

	started := s.startBackground(func() {
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		defer cancel()
		var out tailBuffer
		runErr := runCommand(ctx, "sh", command, &out)
		// Forgotten before the outcome is counted, so that whoever sees
		// the count may start the command again.
		s.forget(key)
		outcome := commandOutcome(ctx, runErr)
		s.metrics.task(typeCmd, outcome)
		if outcome == outcomeSuccess {
			s.log.Info("background command finished", "canary", p.canaryKey(), "outcome", outcome)
		} else {
			s.log.Warn("background command finished", "canary", p.canaryKey(), "outcome", outcome,
				"error", fmt.Sprint(runErr), "outputTail", string(out.Bytes()))
		}
	})
	if !started {
		s.forget(key)
		http.Error(w, "tester is shutting down", http.StatusServiceUnavailable)
		return nil
	}
	s.metrics.task(typeCmd, outcomeAccepted)
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte("command started\n"))
	return nil
}

func (s *server) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, key)
}

// tailBuffer keeps the last outputLimit bytes written to it, so that a
// chatty command cannot exhaust memory.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(b)
	if n >= outputLimit {
		b = b[n-outputLimit:]
		t.buf = t.buf[:0]
	}
	if over := len(t.buf) + len(b) - outputLimit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, b...)
	return n, nil
}

// Bytes returns a copy of the kept output.
func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
