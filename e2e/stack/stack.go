// Package stack runs the whole product on one machine: the local cluster
// with the router CRDs, a real Prometheus scraping the telemetry source,
// serin-tester and the serin controller, both built from this tree. The e2e
// suite and `make demo` share it.
package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/serin-dev/serin/pkg/controller"

	"github.com/serin-dev/serin/e2e/internal/proc"
	"github.com/serin-dev/serin/e2e/prometheus"
	"github.com/serin-dev/serin/e2e/telemetry"
	"github.com/serin-dev/serin/e2e/testenv"
)

// ControllerNamespace holds the controller's leader election Lease.
const ControllerNamespace = "serin-system"

// Options configure a Stack.
type Options struct {
	// Nodes is the number of kwok nodes (default 2).
	Nodes int
	// RPS is the request rate the telemetry source splits between the
	// primary and the canary of every Canary (default 50).
	RPS float64
	// ControllerArgs are extra flags for the serin controller.
	ControllerArgs []string
	// Progress, when set, receives a line as each part starts.
	Progress func(format string, args ...any)
}

// Stack is the running product. Stop it when done.
type Stack struct {
	Env    *testenv.Env
	Client client.WithWatch
	Scheme *runtime.Scheme
	// Prometheus scrapes Exporter, which the telemetry source feeds.
	Prometheus *prometheus.Server
	Exporter   *prometheus.Exporter
	// Telemetry feeds Exporter; its Routes reads a Canary's routing.
	Telemetry *telemetry.Source
	// TesterURL is serin-tester's base URL, for webhooks.
	TesterURL string
	// ControllerMetricsURL is the controller's /metrics endpoint.
	ControllerMetricsURL string
	// Dir holds the binaries and the logs of the controller
	// (serin.log), serin-tester (serin-tester.log) and the telemetry
	// source (telemetry.log).
	Dir string

	controller, tester *proc.Process
	stopTelemetry      context.CancelFunc
	telemetryDone      chan struct{}
	telemetryLog       *os.File
	keepLogs           bool
	stopOnce           sync.Once
	stopErr            error
}

// Start builds the binaries and starts every part; on error it stops what
// it started.
func Start(ctx context.Context, opts Options) (s *Stack, err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if opts.RPS == 0 {
		opts.RPS = 50
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	dir, err := os.MkdirTemp("", "serin-stack-")
	if err != nil {
		return nil, err
	}
	s = &Stack{Dir: dir, Scheme: runtime.NewScheme()}
	defer func() {
		if err != nil {
			s.KeepLogs()
			err = errors.Join(err, s.Stop(), fmt.Errorf("logs kept in %s", dir))
			s = nil
		}
	}()
	if err := controller.AddToScheme(s.Scheme); err != nil {
		return s, err
	}
	// The stack's own client has nothing to log; the controller logs to
	// serin.log.
	ctrllog.SetLogger(logr.Discard())

	progress("building serin and serin-tester from this tree")
	root, err := testenv.ModuleDir("github.com/serin-dev/serin")
	if err != nil {
		return s, err
	}
	for _, bin := range []string{"serin", "serin-tester"} {
		build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, bin), "./cmd/"+bin)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return s, fmt.Errorf("go build ./cmd/%s: %v\n%s", bin, err, out)
		}
	}

	progress("starting the local cluster (etcd, kube-apiserver, controller-manager, scheduler, %d kwok nodes) with the Istio, Contour and Gateway API CRDs", opts.Nodes)
	crds, err := testenv.RouterCRDPaths()
	if err != nil {
		return s, err
	}
	s.Env, err = testenv.Start(ctx, testenv.Options{Mode: testenv.Full, Nodes: opts.Nodes, CRDPaths: append(crds, filepath.Join(root, "artifacts", "crds"))})
	if err != nil {
		return s, fmt.Errorf("starting the local cluster: %w", err)
	}
	if s.Client, err = client.NewWithWatch(s.Env.Config, client.Options{Scheme: s.Scheme}); err != nil {
		return s, err
	}
	if err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ControllerNamespace}}); err != nil {
		return s, err
	}

	progress("starting Prometheus and the telemetry source")
	// Prometheus scrapes the controller's /metrics too, as a
	// PodMonitor would, for the dashboard's queries.
	metricsAddr, err := proc.FreeAddr()
	if err != nil {
		return s, err
	}
	s.Exporter = prometheus.NewExporter()
	if s.Prometheus, err = prometheus.Start(ctx, prometheus.Options{Targets: []string{s.Exporter.Addr(), metricsAddr}}); err != nil {
		return s, err
	}
	if s.telemetryLog, err = os.Create(filepath.Join(dir, "telemetry.log")); err != nil {
		return s, err
	}
	s.Telemetry = &telemetry.Source{Client: s.Client, Exporter: s.Exporter, RPS: opts.RPS}
	telemetryCtx, stopTelemetry := context.WithCancel(context.Background())
	s.stopTelemetry, s.telemetryDone = stopTelemetry, make(chan struct{})
	go func() {
		defer close(s.telemetryDone)
		s.Telemetry.Run(telemetryCtx, time.Second, func(err error) {
			fmt.Fprintf(s.telemetryLog, "%s %v\n", time.Now().Format(time.RFC3339), err)
		})
	}()

	progress("starting serin-tester")
	testerLog := filepath.Join(dir, "serin-tester.log")
	if s.tester, err = proc.Start("serin-tester", filepath.Join(dir, "serin-tester"), testerLog, "--listen-address=127.0.0.1:0"); err != nil {
		return s, err
	}
	addr, err := waitForLogValue(ctx, s.tester, regexp.MustCompile(`msg=listening address=(\S+)`))
	if err != nil {
		return s, err
	}
	s.TesterURL = "http://" + addr

	progress("starting the serin controller")
	healthAddr, err := proc.FreeAddr()
	if err != nil {
		return s, err
	}
	args := append([]string{
		"--kubeconfig=" + s.Env.KubeconfigPath,
		"--leader-election-namespace=" + ControllerNamespace,
		"--metrics-server=" + s.Prometheus.URL,
		"--metrics-addr=" + metricsAddr,
		"--health-addr=" + healthAddr,
		"--log-encoding=console",
	}, opts.ControllerArgs...)
	if s.controller, err = proc.Start("serin", filepath.Join(dir, "serin"), filepath.Join(dir, "serin.log"), args...); err != nil {
		return s, err
	}
	s.ControllerMetricsURL = "http://" + metricsAddr + "/metrics"
	if err := s.controller.WaitHTTP(ctx, "http://"+healthAddr+"/readyz"); err != nil {
		return s, err
	}
	return s, nil
}

// KeepLogs keeps Dir, and the cluster's logs, after Stop.
func (s *Stack) KeepLogs() {
	s.keepLogs = true
	if s.Env != nil {
		s.Env.KeepLogs()
	}
}

// Stop stops every part, the controller first so that it writes nothing
// after the cluster is gone, and removes Dir unless KeepLogs was called.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		for _, p := range []*proc.Process{s.controller, s.tester} {
			if p != nil {
				errs = append(errs, p.Terminate(10*time.Second))
			}
		}
		if s.stopTelemetry != nil {
			s.stopTelemetry()
			<-s.telemetryDone
		}
		if s.telemetryLog != nil {
			errs = append(errs, s.telemetryLog.Close())
		}
		if s.Prometheus != nil {
			errs = append(errs, s.Prometheus.Close())
		}
		if s.Exporter != nil {
			s.Exporter.Close()
		}
		if s.Env != nil {
			errs = append(errs, s.Env.Stop())
		}
		if !s.keepLogs {
			errs = append(errs, os.RemoveAll(s.Dir))
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// waitForLogValue waits for the first match of re in p's log and returns
// its first group.
func waitForLogValue(ctx context.Context, p *proc.Process, re *regexp.Regexp) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if v, ok := findInLog(p.LogPath, re); ok {
			return v, nil
		}
		if p.Exited() {
			return "", fmt.Errorf("%s exited: %v\n%s", p.Name, p.ExitError(), proc.LogTail(p.LogPath, proc.TailLines))
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %s to log %s: %w\n%s", p.Name, re, ctx.Err(), proc.LogTail(p.LogPath, proc.TailLines))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func findInLog(path string, re *regexp.Regexp) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			return strings.Trim(m[1], `"`), true
		}
	}
	return "", false
}
