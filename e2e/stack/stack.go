// Package stack runs the whole product on one machine: the local cluster
// with the router CRDs, a real Prometheus scraping the telemetry source,
// serin-tester and the serin controller, both built from this tree. The e2e
// suite and `make demo` share it.
package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
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

	"github.com/serin-dev/serin/pkg/router"

	"github.com/serin-dev/serin/e2e/telemetry"
	"github.com/serin-dev/serin/pkg/testharness/proc"
	"github.com/serin-dev/serin/pkg/testharness/prometheus"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
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
	// TesterURL is serin-tester's base URL, for webhooks. Its callers
	// authenticate with a namespace's token from TesterToken.
	TesterURL string
	// ControllerMetricsURL is the controller's /metrics endpoint.
	ControllerMetricsURL string
	// Dir holds the binaries and the logs of the controller
	// (serin.log), serin-tester (serin-tester.log) and the telemetry
	// source (telemetry.log).
	Dir string

	controller, tester *proc.Process
	// testerTokens is serin-tester's --tokens-dir.
	testerTokens  string
	stopTelemetry context.CancelFunc
	telemetryDone chan struct{}
	telemetryLog  *os.File
	keepLogs      bool
	stopOnce      sync.Once
	stopErr       error
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
	if err := router.AddToScheme(s.Scheme); err != nil {
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
	// As on a cluster: one token per namespace, in a directory that
	// TesterToken fills as a mounted Secret would be. The apps that
	// receive the tests' load listen on loopback, which serin-tester
	// refuses unless told.
	s.testerTokens = filepath.Join(dir, "tester-tokens")
	if err := os.Mkdir(s.testerTokens, 0o700); err != nil {
		return s, err
	}
	if s.tester, err = proc.Start("serin-tester", filepath.Join(dir, "serin-tester"), testerLog,
		"--listen-address=127.0.0.1:0", "--tokens-dir="+s.testerTokens, "--load-allow-host=127.0.0.0/8"); err != nil {
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

// TesterSecret is the Secret TesterToken creates, for webhooks' secretRef.
const TesterSecret = "serin-tester"

// TesterToken gives namespace ns (which must exist) a serin-tester token:
// it adds the token to serin-tester's tokens directory, creates the Secret
// TesterSecret in ns with the token under the key "token", which webhooks
// with that secretRef send, and waits until serin-tester accepts it. It
// returns the token, for calls of the tests' own.
func (s *Stack) TesterToken(ctx context.Context, ns string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	// Written aside and renamed, so that serin-tester never reads half a
	// token; names starting with a dot are not read.
	tmp := filepath.Join(s.testerTokens, "."+ns)
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, filepath.Join(s.testerTokens, ns)); err != nil {
		return "", err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: TesterSecret},
		Data:       map[string][]byte{"token": []byte(token)},
	}
	if err := s.Client.Create(ctx, secret); err != nil {
		return "", fmt.Errorf("creating the Secret %s/%s: %w", ns, TesterSecret, err)
	}
	// serin-tester re-reads the directory within a second of an unknown
	// token; a closed gate (403) means the token was accepted.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body := `{"name":"token-check","namespace":"` + ns + `"}`
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.TesterURL+"/gate/check", strings.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				return token, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("serin-tester did not accept the token of namespace %s: %w", ns, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
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
