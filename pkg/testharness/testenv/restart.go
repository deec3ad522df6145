package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/serin-dev/serin/pkg/testharness/proc"
)

// Component names, as StopComponent, StartComponent, Logs, PIDs and
// Options.ComponentArgs take them. APIServer mode runs only Etcd and
// KubeAPIServer.
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
	Kwok                  = "kwok"
)

const (
	// componentStopGrace is shorter than Stop's grace: kube-apiserver
	// stops listening at once but then waits out its clients' watches,
	// and etcd its gRPC streams, for longer than a fault should take to
	// inject. Neither has anything left to save by then; etcd's writes are
	// in the page cache, which SIGKILL does not lose.
	componentStopGrace = 3 * time.Second
	// addrRetryInterval is how long StartComponent waits before trying
	// again to bind a port that something else held for a moment.
	addrRetryInterval = time.Second
)

// StopComponent stops one component (SIGTERM, then SIGKILL after 3s) until
// StartComponent starts it again; meanwhile its exit counts as no failure.
// Stopping a stopped component does nothing. The error reports a component
// that had already died on its own.
func (e *Env) StopComponent(name string) error {
	c, err := e.component(name)
	if err != nil {
		return err
	}
	c.ctl.Lock()
	defer c.ctl.Unlock()

	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		return fmt.Errorf("testenv: stopping %s: %w", name, errStopped)
	}
	if c.stopped {
		e.mu.Unlock()
		return nil
	}
	c.stopped = true
	p := c.p
	e.mu.Unlock()

	if p.Exited() {
		return fmt.Errorf("testenv: stopping %s: %w", name, p.ExitError())
	}
	// Being killed after the grace is expected (see componentStopGrace),
	// and etcd's exit status after SIGTERM is the signal's.
	_ = p.Terminate(componentStopGrace)
	logMarker(p.LogPath, "stopped by StopComponent")
	return nil
}

// StartComponent starts a component StopComponent stopped, with the same
// flags, ports, data directory (etcd keeps its data) and certificates, so
// that Config, KubeconfigPath and the clients made from them work again. It
// returns once the running part of the control plane is ready: etcd and
// kwok are healthy and kube-apiserver answers /readyz, each unless stopped
// (without etcd, kube-apiserver is never ready). kube-controller-manager
// and kube-scheduler serve no health check here: for them it only starts
// the process, and dying later fails the test as for any component.
func (e *Env) StartComponent(ctx context.Context, name string) error {
	c, err := e.component(name)
	if err != nil {
		return err
	}
	c.ctl.Lock()
	defer c.ctl.Unlock()
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	e.mu.Lock()
	stopped := c.stopped
	e.mu.Unlock()
	if !stopped {
		return fmt.Errorf("testenv: starting %s: it is running; StopComponent it first", name)
	}
	for {
		if err := e.relaunch(c); err != nil {
			return fmt.Errorf("testenv: starting %s: %w", name, err)
		}
		err := e.waitReady(ctx)
		if err == nil {
			return nil
		}
		// Clients keep the ports, so a port taken while the component
		// was down (say as the local port of an outgoing connection) has
		// to be waited out rather than replaced.
		if !errors.Is(err, errAddrInUse) || ctx.Err() != nil {
			return fmt.Errorf("testenv: starting %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: starting %s: %w (last error: %v)", name, ctx.Err(), err)
		case <-time.After(addrRetryInterval):
		}
	}
}

// RestartComponent stops a component, leaves it down for down and starts it
// again, as StopComponent and StartComponent do.
func (e *Env) RestartComponent(ctx context.Context, name string, down time.Duration) error {
	if err := e.StopComponent(name); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("testenv: restarting %s: %w", name, ctx.Err())
	case <-time.After(down):
	}
	return e.StartComponent(ctx, name)
}

// component looks a started component up by name.
func (e *Env) component(name string) (*component, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.comps {
		if c.name == name {
			return c, nil
		}
	}
	names := make([]string, len(e.comps))
	for i, c := range e.comps {
		names[i] = c.name
	}
	return nil, fmt.Errorf("testenv: no component %q in this environment (it runs %v)", name, names)
}

// relaunch starts c's process again, appending to its log.
func (e *Env) relaunch(c *component) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return errStopped
	}
	logMarker(c.p.LogPath, "started again by StartComponent")
	p, err := proc.Start(c.name, c.bin, c.p.LogPath, c.args...)
	if err != nil {
		return err
	}
	c.p = p
	c.stopped = false
	return nil
}

// waitReady waits until the running components with a health check are
// healthy.
func (e *Env) waitReady(ctx context.Context) error {
	e.mu.Lock()
	stopped := make(map[string]bool, len(e.comps))
	for _, c := range e.comps {
		stopped[c.name] = c.stopped
	}
	e.mu.Unlock()
	if _, ok := stopped[Kwok]; ok && !stopped[Kwok] {
		if err := e.poll(ctx, "kwok health", func(ctx context.Context) (bool, error) {
			return httpOK(ctx, e.kwokURL+"/healthz")
		}); err != nil {
			return err
		}
	}
	if stopped[Etcd] {
		return nil
	}
	if err := e.waitEtcd(ctx); err != nil {
		return err
	}
	if stopped[KubeAPIServer] {
		return nil
	}
	client, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	return e.waitAPIServer(ctx, client)
}

// logMarker notes in a component's log what testenv did, so that the runs
// in one file can be told apart.
func logMarker(path, what string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== testenv: %s at %s ===\n", what, time.Now().Format(time.RFC3339Nano))
}
