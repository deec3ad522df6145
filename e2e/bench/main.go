// Command bench measures what the serin controller costs and how fast it
// releases at scale: it starts the local cluster (pkg/testharness/testenv, kwok nodes)
// with a kube-apiserver audit log, runs the controller with its default
// flags under an identity of its own, creates N Canaries, waits until all
// are initialised, releases a new image on every target at once and waits
// until all are promoted. It reports the wall times against their floor,
// the controller's CPU, memory, API requests (from the audit log) and
// client-side throttling as JSON, with a summary on stderr.
//
//	go run ./e2e/bench -n 1000 -profile bluegreen -o bench.json
//	go run ./e2e/bench -n 200 -controller ./old-serin -compare ./serin
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

const (
	profileBlueGreen = "bluegreen"
	profileIstio     = "istio"

	controllerNamespace = "serin-system"
	// The controller's default client rate limit (--kube-api-qps and
	// --kube-api-burst, see cmd/serin), to estimate its throttling from
	// the audit log. A binary from before they were raised had 50 and 300.
	defaultQPS   = 200
	defaultBurst = 500
)

type config struct {
	n          int
	profile    string
	controller string
	compare    string
	out        string
	keep       bool
	pprofDir   string
	timeout    time.Duration
}

func main() {
	var cfg config
	flag.IntVar(&cfg.n, "n", 1000, "number of Canaries, each in its own namespace")
	flag.StringVar(&cfg.profile, "profile", profileBlueGreen, "bluegreen (kubernetes provider, 3 iterations), istio (steps of 20% to 60%), or rollout (no controller: how fast the cluster alone rolls out N Deployments)")
	flag.StringVar(&cfg.controller, "controller", "", "serin binary to measure (default: built from this tree)")
	flag.StringVar(&cfg.compare, "compare", "", "a second serin binary: run the profile again on a fresh cluster and report the ratios second/first")
	flag.StringVar(&cfg.out, "o", "", "write the JSON report to this file (default stdout)")
	flag.StringVar(&cfg.pprofDir, "pprof", "", "save the controller's CPU profiles (in 20s chunks) and heap profiles of each phase in this directory")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the logs (cluster, audit, controller) and print where")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "limit for each wait (all initialised, all promoted)")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().UTC().Format("15:04:05 ")+format+"\n", args...)
}

func run(cfg config) (err error) {
	switch cfg.profile {
	case profileBlueGreen, profileIstio:
	case profileRollout:
		if cfg.controller != "" || cfg.compare != "" || cfg.pprofDir != "" {
			return errors.New("-profile rollout runs no controller: -controller, -compare and -pprof do not apply")
		}
	default:
		return fmt.Errorf("-profile %q is not bluegreen, istio or rollout", cfg.profile)
	}
	if cfg.n < 1 {
		return fmt.Errorf("-n must be at least 1, got %d", cfg.n)
	}
	// A Ctrl-C stops the waits; the deferred cleanups then stop the
	// controller and the cluster.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctrllog.SetLogger(logr.Discard())

	dir, err := os.MkdirTemp("", "serin-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if cfg.keep || err != nil {
			logf("logs kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	if cfg.profile == profileRollout {
		r, err := clusterRollout(ctx, cfg, dir)
		if err != nil {
			return err
		}
		printRolloutSummary(r)
		return writeJSON(cfg.out, r)
	}
	bins := []string{cfg.controller}
	if cfg.compare != "" {
		bins = append(bins, cfg.compare)
	}
	if bins[0] == "" {
		if bins[0], err = buildController(ctx, dir); err != nil {
			return err
		}
	}
	var results []*Result
	for i, bin := range bins {
		runDir := filepath.Join(dir, fmt.Sprintf("run%d", i+1))
		if err := os.Mkdir(runDir, 0o755); err != nil {
			return err
		}
		logf("run %d/%d: %s, %d Canaries, controller %s", i+1, len(bins), cfg.profile, cfg.n, bin)
		r, err := benchmark(ctx, cfg, bin, runDir)
		if err != nil {
			return err
		}
		printSummary(r)
		results = append(results, r)
	}

	var doc any = results[0]
	if len(results) == 2 {
		ratios := Ratios(results[0], results[1])
		printRatios(ratios)
		doc = map[string]any{"first": results[0], "second": results[1], "ratios": ratios}
	}
	return writeJSON(cfg.out, doc)
}

// writeJSON writes the report to path, or to stdout if path is empty.
func writeJSON(path string, doc any) error {
	out := os.Stdout
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func buildController(ctx context.Context, dir string) (string, error) {
	root, err := testenv.ModuleDir("github.com/serin-dev/serin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "serin")
	logf("building serin from %s", root)
	// Built as artifacts/Dockerfile.serin builds the released binary: its
	// memory is what the benchmark measures.
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/serin")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/serin: %v\n%s", err, out)
	}
	return bin, nil
}

// benchmark is one run on a fresh cluster: the controller starts, cfg.n
// Canaries are created and initialised, and then all released at once.
func benchmark(ctx context.Context, cfg config, bin, dir string) (r *Result, err error) {
	crds, err := benchCRDs(cfg.profile)
	if err != nil {
		return nil, err
	}
	r = &Result{Profile: cfg.profile, Canaries: cfg.n, ControllerBinary: bin, Machine: describeMachine()}
	bc, err := openCluster(ctx, cfg, dir, crds)
	if err != nil {
		return nil, err
	}
	defer func() { err = bc.close(cfg.keep, err) }()
	r.ClusterStartSeconds = bc.startSeconds
	kubeconfig, err := controllerKubeconfig(ctx, bc, dir)
	if err != nil {
		return nil, err
	}

	// The watch runs before anything is created, so no phase is missed.
	t := newTracker()
	stopWatch, err := startWatch(ctx, bc.env.Config, bc.client.Scheme(), &serinv1.Canary{}, t.handler())
	if err != nil {
		return nil, err
	}
	defer stopWatch()

	ctrlLog := filepath.Join(dir, "serin.log")
	c, err := launchController(ctx, cfg, bin, kubeconfig, ctrlLog)
	if c != nil {
		defer func() {
			// Already stopped on success, before the audit log is read.
			if !c.p.Exited() {
				_ = c.p.Terminate(10 * time.Second)
			}
		}()
	}
	if err != nil {
		return nil, err
	}
	pid := c.p.PID()
	base, err := readProcUsage(pid)
	if err != nil {
		return nil, err
	}
	prof, err := controllerProfiler(cfg, c, dir)
	if err != nil {
		return nil, err
	}

	logf("creating %d Canaries", cfg.n)
	endInitProfile := prof.phase(ctx, "init")
	if err := initialiseAll(ctx, cfg, bc.client, c, t, r); err != nil {
		return nil, err
	}
	atInit, err := readProcUsage(pid)
	if err != nil {
		return nil, err
	}
	endInitProfile()

	logf("releasing a new image on every target")
	endReleaseProfile := prof.phase(ctx, "release")
	split, err := promoteAll(ctx, cfg, bc.client, c, t, r)
	if err != nil {
		return nil, err
	}
	end, err := readProcUsage(pid)
	if err != nil {
		return nil, err
	}
	endReleaseProfile()
	r.Controller = controllerUsage(base, atInit, end)
	if err := stopAndCount(cfg, bc, c, ctrlLog, split, r); err != nil {
		return nil, err
	}
	return r, nil
}

// stopAndCount records in r what is read once every Canary is promoted:
// the controller's reconciles and the control plane's CPU while they run,
// then, with the controller stopped, its throttling and its requests in the
// audit log.
func stopAndCount(cfg config, bc *benchCluster, c *controller, ctrlLog string, split time.Time, r *Result) (err error) {
	if r.Reconciles, err = scrapeReconciles(c.metricsURL); err != nil {
		return err
	}
	r.ComponentCPUSeconds = componentCPU(bc.env)
	// Stopped, so that no request of it reaches the audit log while it
	// is read.
	if err := c.p.Terminate(10 * time.Second); err != nil {
		return err
	}
	if r.Controller.ThrottleLogLines, err = countFile(ctrlLog, CountThrottleLines); err != nil {
		return err
	}
	if r.Requests, err = auditedRequests(bc.auditLog, split, cfg.n); err != nil {
		return err
	}
	if cfg.keep {
		r.Logs = map[string]string{"controller": ctrlLog, "audit": bc.auditLog, "cluster": bc.env.Dir}
	}
	return nil
}

// benchCRDs are the CRDs a profile's cluster needs: Serin's, and the
// routers' for the istio profile.
func benchCRDs(profile string) ([]string, error) {
	root, err := testenv.ModuleDir("github.com/serin-dev/serin")
	if err != nil {
		return nil, err
	}
	crds := []string{filepath.Join(root, "artifacts", "crds")}
	if profile == profileIstio {
		routers, err := testenv.RouterCRDPaths()
		if err != nil {
			return nil, err
		}
		crds = append(crds, routers...)
	}
	return crds, nil
}

// controllerKubeconfig creates the controller's namespace and writes the
// kubeconfig of its own identity (controllerUser) into dir.
func controllerKubeconfig(ctx context.Context, bc *benchCluster, dir string) (string, error) {
	if err := bc.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controllerNamespace}}); err != nil {
		return "", err
	}
	kubeconfig := filepath.Join(dir, "controller.kubeconfig")
	if err := bc.ca.writeKubeconfig(kubeconfig, controllerUser, bc.env); err != nil {
		return "", err
	}
	return kubeconfig, nil
}

// launchController starts the controller under test, logging to ctrlLog,
// with the profiling endpoints on when cfg asks for profiles. A controller
// that started but did not get ready is returned with the error, so that
// the caller stops it.
func launchController(ctx context.Context, cfg config, bin, kubeconfig, ctrlLog string) (*controller, error) {
	logf("starting the controller")
	var extra []string
	if cfg.pprofDir != "" {
		// Binaries older than the flag serve the profiles by default.
		extra = append(extra, "--enable-pprof")
	}
	return startController(ctx, bin, kubeconfig, ctrlLog, extra...)
}

// controllerProfiler is the profiler of c's run in dir, or nil when cfg
// asks for no profiles.
func controllerProfiler(cfg config, c *controller, dir string) (*profiler, error) {
	if cfg.pprofDir == "" {
		return nil, nil
	}
	return newProfiler(c.metricsURL, filepath.Join(cfg.pprofDir, filepath.Base(dir)))
}

// initialiseAll creates cfg.n Canaries and their apps and waits until every
// one is initialised or failed, recording the setup time and the
// initialisation latencies in r.
func initialiseAll(ctx context.Context, cfg config, cl client.Client, c *controller, t *tracker, r *Result) error {
	n := cfg.n
	start := time.Now()
	if err := createApps(ctx, cl, n, cfg.profile, t); err != nil {
		return err
	}
	r.Setup.CreateSeconds = time.Since(start).Seconds()
	progress := func() string { return t.progress(n) }
	if err := waitWhileRunning(ctx, c, "all Canaries to be initialised", cfg.timeout, progress, func() bool {
		i, _, f := t.counts()
		return i+f >= n
	}); err != nil {
		return err
	}
	initLat, lastInit := t.latencies(t.created, t.initialized)
	r.Init = summarize(initLat, lastInit.Sub(start).Seconds(), 0)
	logf("%s; all initialised in %.1fs", progress(), r.Init.AllSeconds)
	return nil
}

// promoteAll releases a new image on every target at once and waits until
// every Canary is promoted or failed, recording the release's setup time,
// the promotion latencies and the failures of both phases in r. It returns
// when the release began, which splits the audit log.
func promoteAll(ctx context.Context, cfg config, cl client.Client, c *controller, t *tracker, r *Result) (time.Time, error) {
	n := cfg.n
	split := time.Now()
	if err := release(ctx, cl, n, func(ns string) { t.mark(ns, &t.released) }); err != nil {
		return split, err
	}
	r.Setup.ReleaseSeconds = time.Since(split).Seconds()
	_, _, failedBefore := t.counts()
	progress := func() string { return t.progress(n) }
	if err := waitWhileRunning(ctx, c, "all Canaries to be promoted", cfg.timeout, progress, func() bool {
		_, s, f := t.counts()
		return s+f >= n
	}); err != nil {
		return split, err
	}
	promLat, lastProm := t.latencies(t.released, t.succeeded)
	r.Promotion = summarize(promLat, lastProm.Sub(split).Seconds(), iterations*interval.Seconds())
	r.Promotion.PhaseP50 = t.phaseMedians()
	_, _, failed := t.counts()
	r.Init.Failed, r.Promotion.Failed = failedBefore, failed-failedBefore
	logf("%s; all promoted in %.1fs", progress(), r.Promotion.AllSeconds)
	return split, nil
}

// waitWhileRunning is waitFor that also ends when the controller exits,
// with its exit error.
func waitWhileRunning(ctx context.Context, c *controller, what string, timeout time.Duration, progress func() string, done func() bool) error {
	if err := waitFor(ctx, what, timeout, progress, func() bool { return done() || c.p.Exited() }); err != nil {
		return err
	}
	if c.p.Exited() {
		return c.p.ExitError()
	}
	return nil
}

// controllerUsage is the controller's CPU time in each phase and its peak
// RSS, from its usage at its start (base), once all Canaries were
// initialised (atInit) and once all were promoted (end).
func controllerUsage(base, atInit, end ProcUsage) ControllerUsage {
	return ControllerUsage{
		CPUSeconds: Phases{
			Init:      atInit.CPUSeconds - base.CPUSeconds,
			Promotion: end.CPUSeconds - atInit.CPUSeconds,
			Total:     end.CPUSeconds - base.CPUSeconds,
		},
		PeakRSSMiB: PhasesMiB{Init: float64(atInit.PeakRSSKB) / 1024, Total: float64(end.PeakRSSKB) / 1024},
	}
}

// auditedRequests counts the controller's requests in the audit log, split
// into init and release at split, for n Canaries.
func auditedRequests(auditLog string, split time.Time, n int) (Requests, error) {
	f, err := os.Open(auditLog)
	if err != nil {
		return Requests{}, err
	}
	defer f.Close()
	audit, err := CountAudit(f, controllerUser, split)
	if err != nil {
		return Requests{}, err
	}
	if audit.Total == 0 {
		return Requests{}, fmt.Errorf("no requests of %s in the audit log %s", controllerUser, auditLog)
	}
	return requestsReport(audit, n), nil
}

// startWatch runs an informer for obj's kind with handler until the
// returned func is called; it returns once the informer has synced.
func startWatch(ctx context.Context, cfg *rest.Config, scheme *kruntime.Scheme, obj client.Object, handler toolscache.ResourceEventHandler) (context.CancelFunc, error) {
	cache, err := ctrlcache.New(cfg, ctrlcache.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	inf, err := cache.GetInformer(ctx, obj)
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(handler); err != nil {
		return nil, err
	}
	watchCtx, stop := context.WithCancel(ctx)
	go func() { _ = cache.Start(watchCtx) }()
	if !cache.WaitForCacheSync(ctx) {
		stop()
		return nil, fmt.Errorf("the %T watch did not sync", obj)
	}
	return stop, nil
}

func newClient(cfg *rest.Config) (client.Client, error) {
	scheme := kruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := serinv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	// The benchmark's own setup should be quick and not the bottleneck.
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 2000
	return client.New(cfg, client.Options{Scheme: scheme})
}

func countFile(path string, count func(io.Reader) (int, error)) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return count(f)
}

// componentCPU is the CPU time of each control-plane component: what the
// rest of the cluster spent alongside the controller.
func componentCPU(env *testenv.Env) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range env.PIDs() {
		if u, err := readProcUsage(pid); err == nil {
			out[name] = u.CPUSeconds
		}
	}
	return out
}

// scrapeReconciles sums the controller's controller_runtime_reconcile_total
// by result.
func scrapeReconciles(url string) (map[string]float64, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return ReconcileTotals(string(body)), nil
}

// ReconcileTotals sums controller_runtime_reconcile_total samples of a
// Prometheus text exposition by their result label.
func ReconcileTotals(metrics string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.Lines(metrics) {
		rest, ok := strings.CutPrefix(line, "controller_runtime_reconcile_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(value, &v); err != nil {
			continue
		}
		for l := range strings.SplitSeq(labels, ",") {
			if res, ok := strings.CutPrefix(l, `result="`); ok {
				out[strings.TrimSuffix(res, `"`)] += v
			}
		}
	}
	return out
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), KubernetesVersion: testenv.KubernetesVersion}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPUModel = strings.TrimSpace(value)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, err := ParseStatusKB(string(b), "MemTotal"); err == nil {
			m.MemTotalMiB = kb / 1024
		}
	}
	// The machine may be shared; the load says how much.
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvgAtStart = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}
