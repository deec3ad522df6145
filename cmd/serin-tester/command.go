package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
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

// commandPolicy is what --enable-commands and --command-allow-prefix
// decide.
type commandPolicy struct {
	enabled bool
	// prefixes, when not empty, are the only ways a command may start.
	prefixes []string
}

// describe says what the policy allows, for the start-up log.
func (c commandPolicy) describe() string {
	switch {
	case !c.enabled:
		return "disabled (--enable-commands)"
	case len(c.prefixes) == 0:
		return "any command"
	default:
		return "only commands starting with " + strings.Join(c.prefixes, " | ")
	}
}

// shellMetacharacters could chain another command after an allowed prefix
// (; & | newline), substitute one ($ and backquote, <( and >( in bash) or
// redirect output (< >). With an allow-list, commands carrying them are
// refused, quoted or not.
const shellMetacharacters = ";&|$`()<>\n\r\x00"

// check refuses a command the policy does not allow, with a message that
// says which flag decides.
func (c commandPolicy) check(command string) error {
	if !c.enabled {
		return forbidden("commands are disabled: serin-tester runs cmd and bash tasks only when started with --enable-commands")
	}
	if len(c.prefixes) == 0 {
		return nil
	}
	if i := strings.IndexAny(command, shellMetacharacters); i >= 0 {
		return forbidden(fmt.Sprintf("command refused: with --command-allow-prefix, commands may not contain the shell metacharacter %q", command[i]))
	}
	for _, p := range c.prefixes {
		if hasWordPrefix(command, p) {
			return nil
		}
	}
	return forbidden(fmt.Sprintf("command refused: it starts with none of the --command-allow-prefix prefixes %q", c.prefixes))
}

// hasWordPrefix tells whether command starts with prefix, as whole words:
// "hey" allows "hey -z 1m http://app" but not "heyx".
func hasWordPrefix(command, prefix string) bool {
	rest, ok := strings.CutPrefix(command, prefix)
	if !ok {
		return false
	}
	return rest == "" || strings.HasSuffix(prefix, " ") || strings.HasSuffix(prefix, "\t") ||
		rest[0] == ' ' || rest[0] == '\t'
}

// runBash runs metadata.cmd with bash and answers when it has exited: 200
// on exit status 0, 500 otherwise.
func (s *server) runBash(w http.ResponseWriter, r *http.Request, p payload) error {
	command := p.Metadata["cmd"]
	if command == "" {
		return badRequest("metadata.cmd is required for type bash")
	}
	if err := s.cfg.commands.check(command); err != nil {
		return err
	}
	timeout, err := durationValue(p.Metadata, "timeout", defaultBashTimeout, maxBashTimeout)
	if err != nil {
		return err
	}
	logOutput, err := boolValue(p.Metadata, "logCmdOutput")
	if err != nil {
		return err
	}
	release, err := s.acquireCommand()
	if err != nil {
		return err
	}
	defer release()
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
	if err := s.cfg.commands.check(command); err != nil {
		return err
	}
	timeout, err := durationValue(p.Metadata, "timeout", defaultCmdTimeout, maxCmdTimeout)
	if err != nil {
		return err
	}
	logOutput, err := boolValue(p.Metadata, "logCmdOutput")
	if err != nil {
		return err
	}
	key := "cmd\x00" + p.canaryKey() + "\x00" + command
	if !s.claimKey(key) {
		s.metrics.task(typeCmd, outcomeDuplicate)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("command already running\n"))
		return nil
	}
	release, err := s.acquireCommand()
	if err != nil {
		s.forget(key)
		return err
	}

	forget := sync.OnceFunc(func() { s.forget(key) })
	started := s.startBackground(func() {
		// Deferred too, for a panic; once, so that a later run's key
		// is not forgotten.
		defer release()
		defer forget()
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		defer cancel()
		var out tailBuffer
		runErr := runCommand(ctx, "sh", command, &out)
		// Forgotten before the outcome is counted, so that whoever sees
		// the count may start the command again.
		release()
		forget()
		outcome := commandOutcome(ctx, runErr)
		s.metrics.task(typeCmd, outcome)
		attrs := []any{"canary", p.canaryKey(), "outcome", outcome}
		if outcome == outcomeSuccess {
			s.log.Info("background command finished", attrs...)
			return
		}
		attrs = append(attrs, "error", fmt.Sprint(runErr))
		// Like the bash output, a command's output (which may print a
		// team's secrets) goes to the shared log only when asked for.
		if logOutput {
			attrs = append(attrs, "outputTail", string(out.Bytes()))
		}
		s.log.Warn("background command finished", attrs...)
	})
	if !started {
		release()
		s.forget(key)
		http.Error(w, "tester is shutting down", http.StatusServiceUnavailable)
		return nil
	}
	s.metrics.task(typeCmd, outcomeAccepted)
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte("command started\n"))
	return nil
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
