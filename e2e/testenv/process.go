package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// stopGrace is how long a component may take to exit after SIGTERM.
	stopGrace = 10 * time.Second
	// tailLines is how much of a component log errors and test output show.
	tailLines = 40
)

// process is one running control-plane component.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has been reaped
	waitErr error         // valid after done is closed
}

// startProcess runs bin with args, sending stdout and stderr to logPath.
func startProcess(name, bin, logPath string, args ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The child writes straight into the file, so there is no copying
	// goroutine to lose output when the test binary dies.
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: Ctrl-C in the terminal does not reach the
		// component directly, and Stop can signal the whole group.
		Setpgid: true,
		// Nothing must outlive a test binary that crashes or times out.
		// (Pdeathsig follows the forking OS thread, which the Go runtime
		// only retires for goroutines that exit while locked to it.)
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes a process that has exited, with its log tail.
func (p *process) exitError() error {
	return fmt.Errorf("%s exited unexpectedly (%v); last lines of %s:\n%s", p.name, p.waitErr, p.logPath, logTail(p.logPath, tailLines))
}

// terminate stops the process group: SIGTERM, then SIGKILL after stopGrace.
func (p *process) terminate() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Anything the component forked into its group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// logTail returns the last n lines of the file at path.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	// 64 KiB holds far more than n lines of component logs; reading only the
	// end keeps this cheap for long-running tests.
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

// logContains reports whether the file at path contains s.
func logContains(path, s string) bool {
	data, err := os.ReadFile(path)
	return err == nil && bytes.Contains(data, []byte(s))
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// Holding all listeners until every port is chosen keeps them distinct; the
// remaining race with other programs is handled by Start retrying.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// errAddrInUse marks a start that failed because a chosen port was taken in
// the meantime, which Start retries with fresh ports.
var errAddrInUse = errors.New("port taken before the component could bind it")

// Envs still running, so an interrupt can stop them before the test binary
// exits.
var (
	runningMu   sync.Mutex
	running     = map[*Env]struct{}{}
	handlerOnce sync.Once
)

func register(e *Env) {
	handlerOnce.Do(func() {
		// The components run in their own process groups, so a Ctrl-C
		// reaches only the test binary; it has to stop them itself.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			stopAll()
			os.Exit(128 + int(sig.(syscall.Signal)))
		}()
	})
	runningMu.Lock()
	running[e] = struct{}{}
	runningMu.Unlock()
}

func unregister(e *Env) {
	runningMu.Lock()
	delete(running, e)
	runningMu.Unlock()
}

func stopAll() {
	runningMu.Lock()
	envs := make([]*Env, 0, len(running))
	for e := range running {
		envs = append(envs, e)
	}
	runningMu.Unlock()
	var wg sync.WaitGroup
	for _, e := range envs {
		wg.Go(func() {
			if err := e.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "testenv: stopping %s: %v\n", e.Dir, err)
			}
		})
	}
	wg.Wait()
}

// logPath is where component name logs inside dir.
func logPath(dir, name string) string {
	return filepath.Join(dir, name+".log")
}
