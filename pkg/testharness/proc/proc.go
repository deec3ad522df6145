// Package proc runs the external programs of the test harnesses (the
// control plane, Prometheus) so that none outlives the test binary.
package proc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// TailLines is how much of a log errors and test output show.
const TailLines = 40

// Process is one run of a program, logging to a file.
type Process struct {
	// Name names the program in errors.
	Name string
	// LogPath receives the program's stdout and stderr.
	LogPath string

	logStart int64 // size of the log before this run
	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has been reaped
	waitErr  error         // valid after done is closed
}

// Start runs bin with args, appending stdout and stderr to logPath.
func Start(name, bin, logPath string, args ...string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The child writes straight into the file, so there is no copying
	// goroutine to lose output when the test binary dies.
	defer logFile.Close()
	st, err := logFile.Stat()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: Ctrl-C in the terminal does not reach the
		// program directly, and Terminate can signal the whole group.
		Setpgid: true,
		// Nothing must outlive a test binary that crashes or times out.
		// (Pdeathsig follows the forking OS thread, which the Go runtime
		// only retires for goroutines that exit while locked to it.)
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, logStart: st.Size(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// PID is the process id (and process group id).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// ExitError describes a process that has exited, with its log tail.
func (p *Process) ExitError() error {
	return fmt.Errorf("%s exited unexpectedly (%v); last lines of %s:\n%s", p.Name, p.waitErr, p.LogPath, LogTail(p.LogPath, TailLines))
}

// Terminate stops the process group: SIGTERM, then SIGKILL after grace. It
// reports an exit that was not clean.
func (p *Process) Terminate(grace time.Duration) error {
	if p.Exited() {
		// Its process group id may belong to someone else by now.
		return nil
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	var err error
	select {
	case <-p.done:
		if p.waitErr != nil {
			err = fmt.Errorf("%s exited with %v after SIGTERM", p.Name, p.waitErr)
		}
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
		err = fmt.Errorf("%s ignored SIGTERM for %v and was killed", p.Name, grace)
	}
	// Anything it forked into its group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return err
}

// LogContains reports whether this run wrote s to the log.
func (p *Process) LogContains(s string) bool {
	data, err := os.ReadFile(p.LogPath)
	return err == nil && int64(len(data)) >= p.logStart && strings.Contains(string(data[p.logStart:]), s)
}

// LogTail returns the last n lines of the file at path.
func LogTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	// 64 KiB holds far more than n lines; reading only the end keeps this
	// cheap for long runs.
	const window = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return fmt.Sprintf("(cannot read log: %v)", err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreeAddr is a loopback address with a port free right now, for programs
// whose flags take no port 0 that they would report back.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitHTTP waits until url answers 200, failing early when the process
// exits and after a minute at most.
func (p *Process) WaitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.Name, p.ExitError(), LogTail(p.LogPath, TailLines))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s at %s: %w\n%s", p.Name, url, ctx.Err(), LogTail(p.LogPath, TailLines))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
