// Package testenv runs a real, local Kubernetes control plane for tests:
// etcd and kube-apiserver, optionally with kube-controller-manager,
// kube-scheduler and kwok simulating nodes, all on free loopback ports.
//
// The binaries come from e2e/testbin/build.sh (see BinDir). Components run
// in their own process groups and die with the test binary; once an Env has
// been started, SIGINT and SIGTERM stop every running Env before the test
// binary exits.
//
// For fault-injection tests, StopComponent, StartComponent and
// RestartComponent take single components down and up again, and ConfigVia
// and KubeconfigVia route clients through a proxy (see pkg/testharness/faultproxy) that
// can cut them off from kube-apiserver.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/serin-dev/serin/pkg/testharness/proc"
)

// Mode selects which components Start runs.
type Mode int

const (
	// APIServer runs etcd and kube-apiserver only: objects are stored and
	// validated but nothing reconciles them.
	APIServer Mode = iota
	// Full adds kube-controller-manager, kube-scheduler and kwok, so
	// workloads get scheduled onto fake nodes and become ready.
	Full
)

func (m Mode) String() string {
	switch m {
	case APIServer:
		return "APIServer"
	case Full:
		return "Full"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Options configure Start.
type Options struct {
	Mode Mode
	// CRDPaths are CRD YAML files (multi-document allowed) or directories of
	// them, installed and waited for before Start returns.
	CRDPaths []string
	// Nodes is the number of fake kwok nodes in Full mode (default 1).
	Nodes int
	// BinDir overrides BinDir(). Full mode reads the kwok stages from the
	// kwok-stages directory next to it.
	BinDir string
	// ComponentArgs are extra flags per component (KubeAPIServer,
	// KubeScheduler, ...), appended so that they override the defaults:
	// for benchmarks that need an audit log or higher client limits.
	ComponentArgs map[string][]string
}

// Env is a running control plane.
type Env struct {
	// Config is an admin (system:masters) client config.
	Config *rest.Config
	// KubeconfigPath is a kubeconfig file for the same admin user.
	KubeconfigPath string
	// Dir holds certificates, etcd data and component logs.
	Dir string

	componentArgs map[string][]string
	creds         *credentials
	etcdURL       string
	kwokURL       string // Full mode only

	mu       sync.Mutex
	comps    []*component // in start order
	stopping bool
	keepLogs bool

	stopOnce sync.Once
	stopErr  error
}

const (
	// defaultTimeout bounds Start and InstallCRDs when the caller's context
	// has no deadline.
	defaultTimeout = 3 * time.Minute
	// startAttempts covers the rare case of a chosen port being taken by
	// someone else before a component binds it.
	startAttempts = 3
	pollInterval  = 100 * time.Millisecond

	// Addresses that are allocated but never routed.
	serviceCIDR = "10.0.0.0/24"
	podCIDR     = "10.244.0.0/16"
)

// Start launches a control plane as described by opts and returns once it is
// ready: the API server answers /readyz, CRDs are established and, in Full
// mode, the nodes are Ready and the default ServiceAccount exists.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	if opts.Nodes < 0 {
		return nil, fmt.Errorf("testenv: Nodes must not be negative, got %d", opts.Nodes)
	}
	if opts.Mode != APIServer && opts.Mode != Full {
		return nil, fmt.Errorf("testenv: unknown mode %v", opts.Mode)
	}
	if opts.BinDir == "" {
		dir, err := BinDir()
		if err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
		opts.BinDir = dir
	}
	bins := []string{Etcd, KubeAPIServer}
	if opts.Mode == Full {
		bins = append(bins, KubeControllerManager, KubeScheduler, Kwok)
	}
	if err := checkBinaries(opts.BinDir, bins...); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	for attempt := 1; ; attempt++ {
		e, err := start(ctx, opts)
		if err == nil {
			return e, nil
		}
		if e == nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
		if e.stopRequested() {
			// Interrupted: whatever failed, failed because Stop is
			// already tearing everything down.
			_ = e.Stop()
			return nil, fmt.Errorf("testenv: %w", errStopped)
		}
		if errors.Is(err, errAddrInUse) && attempt < startAttempts && ctx.Err() == nil {
			_ = e.Stop()
			continue
		}
		e.KeepLogs()
		_ = e.Stop()
		return nil, fmt.Errorf("testenv: starting %v mode failed, logs kept in %s: %w", opts.Mode, e.Dir, err)
	}
}

// start makes one attempt. On error, the returned Env (if any) must be
// stopped by the caller.
func start(ctx context.Context, opts Options) (*Env, error) {
	dir, err := os.MkdirTemp("", "serin-testenv-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, KubeconfigPath: filepath.Join(dir, "admin.kubeconfig"), componentArgs: opts.ComponentArgs}
	register(e)
	return e, e.startComponents(ctx, opts)
}

func (e *Env) startComponents(ctx context.Context, opts Options) error {
	creds, err := writeCredentials(e.Dir)
	if err != nil {
		return fmt.Errorf("generating credentials: %w", err)
	}
	e.creds = creds
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	bin := func(name string) string { return filepath.Join(opts.BinDir, name) }

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	e.etcdURL = etcdURL
	if err := e.run(Etcd, bin(Etcd),
		"--name=testenv",
		"--data-dir="+filepath.Join(e.Dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=testenv="+peerURL,
		// Test data is disposable; skipping fsync makes writes much faster.
		"--unsafe-no-fsync",
		"--quota-backend-bytes="+strconv.Itoa(512<<20),
		"--log-level=warn",
	); err != nil {
		return err
	}
	if err := e.waitEtcd(ctx); err != nil {
		return err
	}

	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := e.run(KubeAPIServer, bin(KubeAPIServer),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+creds.certFile,
		"--tls-private-key-file="+creds.keyFile,
		"--token-auth-file="+creds.tokenFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+creds.saKeyFile,
		"--service-account-signing-key-file="+creds.saKeyFile,
		"--service-cluster-ip-range="+serviceCIDR,
		// Endpoints may not hold a loopback address, so reconciling the
		// kubernetes Service to 127.0.0.1 would only fail.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
	); err != nil {
		return err
	}

	e.Config = &rest.Config{
		Host:            host,
		BearerToken:     creds.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: creds.certPEM},
		QPS:             100,
		Burst:           200,
	}
	if err := writeKubeconfig(e.KubeconfigPath, host, "", creds); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	if err := e.waitAPIServer(ctx, client); err != nil {
		return err
	}

	if opts.Mode == Full {
		if err := e.startFull(ctx, opts, creds, client); err != nil {
			return err
		}
	}
	if len(opts.CRDPaths) > 0 {
		if err := e.InstallCRDs(ctx, opts.CRDPaths...); err != nil {
			return err
		}
	}
	return nil
}

// component is one control-plane program, with what it takes to start it
// again.
type component struct {
	name string
	bin  string
	args []string

	// ctl serializes StopComponent and StartComponent of this component.
	ctl sync.Mutex

	// Guarded by Env.mu.
	p *proc.Process
	// stopped is set by StopComponent, before it signals p, so that its
	// exit is not taken for a crash.
	stopped bool
}

// run starts a component and records it for Stop.
func (e *Env) run(name, bin string, args ...string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return errStopped
	}
	c := &component{name: name, bin: bin, args: slices.Concat(args, e.componentArgs[name])}
	p, err := proc.Start(name, bin, logPath(e.Dir, name), c.args...)
	if err != nil {
		return err
	}
	c.p = p
	e.comps = append(e.comps, c)
	return nil
}

func (e *Env) waitEtcd(ctx context.Context) error {
	return e.poll(ctx, "etcd health", func(ctx context.Context) (bool, error) {
		return httpOK(ctx, e.etcdURL+"/health")
	})
}

func (e *Env) waitAPIServer(ctx context.Context, client kubernetes.Interface) error {
	return e.poll(ctx, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, err
	})
}

// poll calls cond until it reports true, a component dies or ctx ends.
// cond's last error is included when giving up.
func (e *Env) poll(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	var lastErr error
	for {
		if err := e.deadComponent(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		// A hung request must not eat the whole deadline of the wait.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := cond(cctx)
		cancel()
		if ok {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), lastErr)
		case <-time.After(pollInterval):
		}
	}
}

func (e *Env) stopRequested() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopping
}

// errStopped reports that Stop was called, e.g. by the interrupt handler,
// while Start or InstallCRDs was still waiting.
var errStopped = errors.New("environment stopped")

// deadComponent returns an error for the first component that has exited
// without StopComponent having stopped it.
func (e *Env) deadComponent() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Stop sets stopping before it kills anything, so deaths it causes are
	// never mistaken for crashes.
	if e.stopping {
		return errStopped
	}
	for _, c := range e.comps {
		if !c.stopped && c.p.Exited() {
			if c.p.LogContains("address already in use") {
				return fmt.Errorf("%w: %w", errAddrInUse, c.p.ExitError())
			}
			return c.p.ExitError()
		}
	}
	return nil
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// httpOK reports whether a plain GET of url returns 200.
func httpOK(ctx context.Context, url string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return true, nil
}

// Stop terminates all components (SIGTERM, then SIGKILL after a grace
// period) and removes Dir unless KeepLogs was called. It reports components
// that had died on their own, not those StopComponent stopped. Calling it
// again returns the first result.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() { e.stopErr = e.stop() })
	return e.stopErr
}

func (e *Env) stop() error {
	e.mu.Lock()
	e.stopping = true
	// StartComponent replaces a component's process only while stopping is
	// false, so these are the last ones.
	procs := make([]*proc.Process, len(e.comps))
	crashed := make([]bool, len(e.comps))
	for i, c := range e.comps {
		procs[i] = c.p
		crashed[i] = !c.stopped && c.p.Exited()
	}
	e.mu.Unlock()
	defer unregister(e)

	var errs []error
	// Reverse start order: clients first, etcd last, so no component spends
	// its shutdown retrying a dependency that is already gone.
	for i, p := range slices.Backward(procs) {
		if crashed[i] {
			errs = append(errs, p.ExitError())
		}
		_ = p.Terminate(stopGrace)
	}
	e.mu.Lock()
	keep := e.keepLogs
	e.mu.Unlock()
	if !keep {
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// KeepLogs makes Stop leave Dir, with the component logs, in place.
func (e *Env) KeepLogs() {
	e.mu.Lock()
	e.keepLogs = true
	e.mu.Unlock()
}

// Logs maps each started component to its log file. A restarted component
// appends to the same file.
func (e *Env) Logs() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := make(map[string]string, len(e.comps))
	for _, c := range e.comps {
		logs[c.name] = c.p.LogPath
	}
	return logs
}

// PIDs maps each started component to its process id, which changes when
// it is restarted. Components StopComponent stopped are left out.
func (e *Env) PIDs() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	pids := make(map[string]int, len(e.comps))
	for _, c := range e.comps {
		if !c.stopped {
			pids[c.name] = c.p.PID()
		}
	}
	return pids
}

// components returns the started component names in start order.
func (e *Env) components() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := make([]string, len(e.comps))
	for i, c := range e.comps {
		names[i] = c.name
	}
	return names
}
