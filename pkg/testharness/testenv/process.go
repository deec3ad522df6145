package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

const (
	// stopGrace is how long a component may take to exit after SIGTERM.
	stopGrace = 10 * time.Second
)

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
