//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/serin-dev/serin/pkg/testharness/proc"
)

// shardLabel labels each scenario's Canaries with the shard its
// controllers serve (--watch-label-selector).
const shardLabel = "serin.dev/chaos-shard"

// restartDelay is how long the supervisor waits before starting a
// controller that exited again, as a kubelet restarting a container would.
const restartDelay = 300 * time.Millisecond

// controller is one replica of the serin controller under a supervisor
// that starts it again whenever it exits, until the test ends.
type controller struct {
	name        string
	log         string
	args        []string
	metricsAddr string

	mu      sync.Mutex
	env     []string // for the next start only
	p       *proc.Process
	starts  int
	kills   int
	exits   []string // exits the test did not cause
	killing bool
	stopped bool
	started chan struct{} // closed and replaced at every start
	done    chan struct{}
}

// controllerOptions describe the replicas of one scenario.
type controllerOptions struct {
	shard   string // serves Canaries labelled shardLabel=shard
	leaseNS string // holds the leader election Lease
	// kubeconfig defaults to the stack's.
	kubeconfig string
	env        []string // for the first start only (fault injection)
	flags      []string
}

// startController starts replica name under a supervisor, stopped when t
// ends; a failed t logs the end of its log.
func startController(t *testing.T, name string, o controllerOptions) *controller {
	t.Helper()
	metricsAddr, err := proc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if o.kubeconfig == "" {
		o.kubeconfig = st.Env.KubeconfigPath
	}
	c := &controller{
		name:        name,
		log:         filepath.Join(logDir(), strings.NewReplacer("/", "_").Replace(t.Name())+"-"+name+".log"),
		metricsAddr: metricsAddr,
		env:         o.env,
		started:     make(chan struct{}),
		done:        make(chan struct{}),
		args: append([]string{
			"--kubeconfig=" + o.kubeconfig,
			"--watch-label-selector=" + shardLabel + "=" + o.shard,
			"--leader-election-namespace=" + o.leaseNS,
			"--leader-election-lease-duration=3s",
			"--leader-election-renew-deadline=2s",
			"--leader-election-retry-period=500ms",
			"--metrics-server=" + st.Prometheus.URL,
			"--metrics-addr=" + metricsAddr,
			"--health-addr=0",
			"--log-encoding=console",
		}, o.flags...),
	}
	go c.supervise()
	c.waitStarted(t)
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("controller %s (log %s), last lines:\n%s", name, c.log, proc.LogTail(c.log, 30))
		}
	})
	return c
}

func (c *controller) waitStarted(t *testing.T) {
	c.mu.Lock()
	ch, p := c.started, c.p
	c.mu.Unlock()
	if p != nil {
		return
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("controller %s did not start", c.name)
	}
}

func (c *controller) supervise() {
	defer close(c.done)
	for {
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			return
		}
		bin, args := serinBin, c.args
		if len(c.env) > 0 {
			// env execs the controller in its own place: same pid.
			bin, args = "/usr/bin/env", append(append(append([]string(nil), c.env...), serinBin), c.args...)
		}
		c.env = nil
		appendLine(c.log, fmt.Sprintf("=== chaos: start %d of %s at %s", c.starts+1, c.name, time.Now().Format(time.RFC3339Nano)))
		p, err := proc.Start("serin-"+c.name, bin, c.log, args...)
		if err != nil {
			c.exits = append(c.exits, err.Error())
			c.mu.Unlock()
			time.Sleep(time.Second)
			continue
		}
		c.p = p
		c.starts++
		close(c.started)
		c.started = make(chan struct{})
		c.mu.Unlock()

		<-p.Done()
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			return
		}
		if !c.killing {
			c.exits = append(c.exits, fmt.Sprintf("exited at %s: %s", time.Now().Format("15:04:05.000"), exitReason(c.log)))
		}
		c.killing = false
		c.mu.Unlock()
		time.Sleep(restartDelay)
	}
}

// appendLine appends line to the log at path, marking what the test did.
func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, line)
	f.Close()
}

// exitReason is the process's last log line, preceded by the last error it
// logged since it started, if any. The last line alone misleads: a replica
// that lost its Lease logs the error and then the shutdown of its
// runnables.
func exitReason(path string) string {
	lines := strings.Split(proc.LogTail(path, 40), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "=== chaos:") {
			break
		}
		if strings.Contains(lines[i], "\tERROR\t") || strings.Contains(lines[i], `"level":"error"`) {
			if line := strings.TrimSpace(lines[i]); line != last {
				return line + " … " + last
			}
			break
		}
	}
	return last
}

// process is the running process (nil before the first start).
func (c *controller) process() *proc.Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p
}

// Kill SIGKILLs the running process and waits until it is gone; the
// supervisor starts it again after restartDelay.
func (c *controller) Kill() {
	c.mu.Lock()
	p := c.p
	if p == nil || p.Exited() {
		c.mu.Unlock()
		return
	}
	c.killing = true
	c.kills++
	c.mu.Unlock()
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	<-p.Done()
}

// Pause SIGSTOPs the running process; Resume SIGCONTs it.
func (c *controller) Pause() {
	if p := c.process(); p != nil && !p.Exited() {
		_ = syscall.Kill(-p.PID(), syscall.SIGSTOP)
	}
}

func (c *controller) Resume(p *proc.Process) {
	if p != nil && !p.Exited() {
		_ = syscall.Kill(-p.PID(), syscall.SIGCONT)
	}
}

// unexpectedExits are the exits the test did not cause.
func (c *controller) unexpectedExits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.exits...)
}

func (c *controller) startCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts
}

func (c *controller) stop() {
	c.mu.Lock()
	c.stopped = true
	p := c.p
	c.mu.Unlock()
	if p != nil {
		_ = syscall.Kill(-p.PID(), syscall.SIGCONT)
		_ = p.Terminate(5 * time.Second)
	}
	<-c.done
}

// leaseHolder is the holderIdentity of the shard's leader election Lease
// in ns ("" while there is none).
func leaseHolder(ctx context.Context, ns string) string {
	var leases coordinationv1.LeaseList
	if err := st.Client.List(ctx, &leases, client.InNamespace(ns)); err != nil {
		return ""
	}
	for _, l := range leases.Items {
		if strings.HasPrefix(l.Name, "serin-leader-election") && l.Spec.HolderIdentity != nil {
			return *l.Spec.HolderIdentity
		}
	}
	return ""
}

// waitLeaseHolder waits until the Lease in ns has a holder other than
// not, and returns it.
func waitLeaseHolder(ctx context.Context, ns, not string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if h := leaseHolder(ctx, ns); h != "" && h != not {
			return h, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no new holder of the Lease in %s (was %q): %w", ns, not, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
