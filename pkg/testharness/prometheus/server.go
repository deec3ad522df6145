// Package prometheus runs a real Prometheus server for end-to-end tests,
// together with an Exporter that serves the telemetry a mesh or an
// application would report, so metric checks can be tested without a data
// plane.
package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/serin-dev/serin/pkg/testharness/proc"
)

// BinaryEnv names the environment variable that points at the prometheus
// executable; without it, prometheus is looked up on PATH.
const BinaryEnv = "SERIN_PROMETHEUS"

const (
	// defaultScrapeInterval applies when Options.ScrapeInterval is zero.
	defaultScrapeInterval = time.Second
	// startTimeout bounds how long a start may wait for /-/ready.
	startTimeout = time.Minute
	// stopGrace is how long Prometheus may take to exit after SIGTERM.
	stopGrace = 10 * time.Second
	// startAttempts is how often Start picks a new port when the chosen one
	// was taken before Prometheus could bind it.
	startAttempts = 3
	// pollInterval paces readiness checks and WaitForSeries.
	pollInterval = 100 * time.Millisecond
)

// Options configures a Server.
type Options struct {
	// ScrapeInterval is the global scrape interval (and scrape timeout);
	// default 1s. It must be a whole number of milliseconds.
	ScrapeInterval time.Duration
	// Targets are host:port addresses scraped at /metrics by job "test".
	Targets []string
}

// Server is a Prometheus process listening on a loopback port. Its
// directory holds prometheus.yml, the TSDB under data/ and prometheus.log.
type Server struct {
	// URL is the base URL of the HTTP API, http://127.0.0.1:<port>. It
	// stays the same across Stop and Restart.
	URL string
	// Dir holds the configuration, data and log; Close removes it.
	Dir string

	bin  string
	args []string
	api  promv1.API

	mu   sync.Mutex
	proc *proc.Process // nil while stopped
}

// Start runs Prometheus on a free loopback port with a new temporary
// directory and waits until it reports ready. ctx bounds only the start, not
// the life of the process; call Close when done.
//
// Prometheus 2.42 applies scrape targets in 5s steps, so the first scrape
// comes 5–10s after Start or Restart returns; use WaitForSeries.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	interval := opts.ScrapeInterval
	if interval == 0 {
		interval = defaultScrapeInterval
	}
	if interval < time.Millisecond || interval%time.Millisecond != 0 {
		return nil, fmt.Errorf("scrape interval %v is not a positive whole number of milliseconds", interval)
	}
	for _, t := range opts.Targets {
		if _, _, err := net.SplitHostPort(t); err != nil {
			return nil, fmt.Errorf("scrape target %q: %w", t, err)
		}
	}
	dir, err := os.MkdirTemp("", "serin-prometheus-")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, config(interval, opts.Targets), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		s, err := startOnFreePort(ctx, bin, dir, cfg)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// StartForTest starts a Server for t and closes it when t ends. A failing
// start fails t. If t has failed or Prometheus died, the end of its log is
// written to the test log.
func StartForTest(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || s.crashErr() != nil {
			t.Logf("last lines of %s:\n%s", s.logPath(), proc.LogTail(s.logPath(), proc.TailLines))
		}
		if err := s.Close(); err != nil {
			t.Errorf("closing prometheus: %v", err)
		}
	})
	return s
}

// binary locates the prometheus executable.
func binary() (string, error) {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		st, err := os.Stat(bin)
		if err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("%s=%s is not an executable file; install Prometheus with `apt-get install prometheus` or fix %s", BinaryEnv, bin, BinaryEnv)
		}
		return bin, nil
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return "", fmt.Errorf("prometheus not found on PATH and %s is not set; install it with `apt-get install prometheus`: %w", BinaryEnv, err)
	}
	return bin, nil
}

// config renders prometheus.yml. JSON is valid YAML, so encoding/json does.
func config(interval time.Duration, targets []string) []byte {
	if targets == nil {
		targets = []string{}
	}
	d := strconv.FormatInt(interval.Milliseconds(), 10) + "ms"
	data, err := json.MarshalIndent(map[string]any{
		"global": map[string]any{
			"scrape_interval":     d,
			"scrape_timeout":      d,
			"evaluation_interval": d,
		},
		"scrape_configs": []any{map[string]any{
			"job_name":       "test",
			"static_configs": []any{map[string]any{"targets": targets}},
		}},
	}, "", "  ")
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return data
}

// errAddrInUse marks a start that failed because the chosen port was taken
// in the meantime, which Start retries with a fresh port.
var errAddrInUse = errors.New("port taken before prometheus could bind it")

func startOnFreePort(ctx context.Context, bin, dir, cfg string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	url := "http://" + addr
	client, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL: url,
		Dir: dir,
		bin: bin,
		args: []string{
			"--config.file=" + cfg,
			"--web.listen-address=" + addr,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--storage.tsdb.retention.time=1h",
		},
		api: promv1.NewAPI(client),
	}
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Restart starts Prometheus again after Stop, on the same URL with the same
// configuration and data, and waits until it is ready.
func (s *Server) Restart(ctx context.Context) error {
	return s.run(ctx)
}

// run starts the process and waits for it to be ready; on failure nothing
// is left running.
func (s *Server) run(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("prometheus is already running")
	}
	p, err := proc.Start("prometheus", s.bin, s.logPath(), s.args...)
	if err != nil {
		return err
	}
	if err := s.waitReady(ctx, p); err != nil {
		_ = p.Terminate(stopGrace)
		return err
	}
	s.proc = p
	return nil
}

// waitReady polls /-/ready, then checks that the server answering is p and
// not some other process that held the port first.
func (s *Server) waitReady(ctx context.Context, p *proc.Process) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.Done():
			if p.LogContains("address already in use") {
				return fmt.Errorf("%w; last lines of %s:\n%s", errAddrInUse, s.logPath(), proc.LogTail(s.logPath(), proc.TailLines))
			}
			return p.ExitError()
		case <-ctx.Done():
			return fmt.Errorf("prometheus at %s not ready: %w; last lines of %s:\n%s", s.URL, context.Cause(ctx), s.logPath(), proc.LogTail(s.logPath(), proc.TailLines))
		case <-tick.C:
		}
		resp, err := client.Get(s.URL + "/-/ready")
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		// Any other server holding the port makes ours fail to bind.
		flags, err := s.api.Flags(ctx)
		if want := filepath.Join(s.Dir, "data"); err != nil || flags["storage.tsdb.path"] != want {
			return fmt.Errorf("%w: %s answers with storage.tsdb.path %q (error %v), want %q", errAddrInUse, s.URL, flags["storage.tsdb.path"], err, want)
		}
		return nil
	}
}

// Stop terminates Prometheus (SIGTERM, then SIGKILL after 10s) and waits
// until it is gone, keeping its directory for Restart. It is idempotent. It
// reports an error if Prometheus had died before or did not exit cleanly.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	p := s.proc
	s.proc = nil
	if p.Exited() {
		return p.ExitError()
	}
	if err := p.Terminate(stopGrace); err != nil {
		return fmt.Errorf("%w; last lines of %s:\n%s", err, s.logPath(), proc.LogTail(s.logPath(), proc.TailLines))
	}
	return nil
}

// Close stops Prometheus and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	return errors.Join(err, os.RemoveAll(s.Dir))
}

// API returns a client for the server's HTTP API.
func (s *Server) API() promv1.API {
	return s.api
}

// WaitForSeries polls the instant query until it returns a non-empty
// result, e.g. until the first scrapes of a series have arrived or a rate
// over them can be computed.
func (s *Server) WaitForSeries(ctx context.Context, query string) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last string
	for {
		v, _, err := s.api.Query(ctx, query, time.Now())
		switch {
		case err != nil:
			if crash := s.crashErr(); crash != nil {
				return fmt.Errorf("waiting for %s: %w", query, crash)
			}
			last = err.Error()
		case !empty(v):
			return nil
		default:
			last = "empty result"
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %s)", query, context.Cause(ctx), last)
		case <-tick.C:
		}
	}
}

// empty reports whether a query result has no samples. Scalars and strings
// always count as a result.
func empty(v model.Value) bool {
	switch v := v.(type) {
	case model.Vector:
		return len(v) == 0
	case model.Matrix:
		return len(v) == 0
	}
	return v == nil
}

func (s *Server) logPath() string {
	return filepath.Join(s.Dir, "prometheus.log")
}

// crashErr describes the process if it exited without Stop.
func (s *Server) crashErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || !s.proc.Exited() {
		return nil
	}
	return s.proc.ExitError()
}

// pid is the process id of the running Prometheus, or 0 while stopped.
func (s *Server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.PID()
}
