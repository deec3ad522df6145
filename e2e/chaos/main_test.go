//go:build chaos

// Package chaos is the fault suite (make chaos): on the e2e stack (local
// cluster, Prometheus fed by the telemetry source, serin-tester), each
// scenario runs a release through controllers of its own (the serin
// binary built with the faultinject tag), injects a fault (a killed,
// paused or failed-over controller, Prometheus or serin-tester down,
// misbehaving webhooks), and compares the run with the same release
// without faults: same final phase, primary image and traffic, each weight
// step taken once and in order, each iteration announced once.
//
// A decision's Events are stored with it (status.pendingEvents) and
// delivered after the write under names derived from their IDs, so a kill
// right as a step is stored (the kill in Progressing) still ends with its
// Advanced Event recorded once.
package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serin-dev/serin/e2e/stack"
	"github.com/serin-dev/serin/pkg/testharness/testenv"
)

var (
	st *stack.Stack
	// serinBin is the controller built with -tags faultinject: without
	// SERIN_FAULT_EXIT_AFTER it behaves as the release build.
	serinBin string
	binDir   string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	started := time.Now()
	// Every parallel scenario mostly waits; the default of GOMAXPROCS (2
	// here) would run them almost one at a time.
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == fmt.Sprint(runtime.GOMAXPROCS(0)) {
		_ = flag.Set("test.parallel", "32")
	}
	var err error
	binDir, err = os.MkdirTemp("", "serin-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	root, err := testenv.ModuleDir("github.com/serin-dev/serin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	serinBin = filepath.Join(binDir, "serin")
	fmt.Fprintln(os.Stderr, "chaos: building serin -tags faultinject")
	build := exec.Command("go", "build", "-tags", "faultinject", "-o", serinBin, "./cmd/serin")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build -tags faultinject ./cmd/serin: %v\n%s", err, out)
		return 1
	}
	// The stack's own controller serves no Canary of this suite: every
	// scenario runs controllers of its own, which it kills and restarts.
	st, err = stack.Start(context.Background(), stack.Options{
		ControllerArgs: []string{"--watch-label-selector=" + shardLabel + "=stack-controller-serves-none"},
		Progress: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "chaos: "+format+"\n", args...)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the stack:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "chaos: stack ready in %v\n", time.Since(started).Round(time.Second))
	code := m.Run()
	table.print(time.Since(started))
	if code != 0 {
		st.KeepLogs()
		fmt.Fprintf(os.Stderr, "chaos: logs kept in %s and %s; controller logs in %s\n", st.Dir, st.Env.Dir, logDir())
	}
	if err := st.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
	}
	if code == 0 {
		_ = os.RemoveAll(logDir())
	}
	return code
}

var (
	logDirOnce sync.Once
	logDirPath string
)

// logDir holds the logs of the scenarios' controllers; it is kept when a
// scenario fails.
func logDir() string {
	logDirOnce.Do(func() {
		d, err := os.MkdirTemp("", "serin-chaos-logs-")
		if err != nil {
			panic(err)
		}
		logDirPath = d
	})
	return logDirPath
}

// results is the table printed at the end: one row per scenario.
type results struct {
	mu   sync.Mutex
	rows []row
}

type row struct {
	scenario string
	passed   bool
	detail   string
	extra    time.Duration // against the fault-free run
	hasExtra bool
}

var table results

func (r *results) add(x row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, x)
}

func (r *results) print(total time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.SortStableFunc(r.rows, func(a, b row) int { return strings.Compare(a.scenario, b.scenario) })
	passed := 0
	fmt.Fprintf(os.Stderr, "\n%-40s %-6s %9s  %s\n", "scenario", "result", "extra", "detail")
	for _, x := range r.rows {
		res, extra := "FAIL", "-"
		if x.passed {
			res = "pass"
			passed++
		}
		if x.hasExtra {
			extra = fmt.Sprintf("%+.1fs", x.extra.Seconds())
		}
		fmt.Fprintf(os.Stderr, "%-40s %-6s %9s  %s\n", x.scenario, res, extra, x.detail)
	}
	fmt.Fprintf(os.Stderr, "%d/%d scenarios passed; suite ran %v\n", passed, len(r.rows), total.Round(time.Second))
}

// report adds t's row to the table when t ends: passed unless t failed.
// detail and extra may be set until then.
type report struct {
	t        *testing.T
	mu       sync.Mutex
	detail   []string
	extra    time.Duration
	hasExtra bool
}

func newReport(t *testing.T) *report {
	r := &report{t: t}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		name := strings.TrimPrefix(t.Name(), "TestChaos/")
		name = strings.TrimPrefix(strings.TrimPrefix(name, "parallel/"), "sequential/")
		table.add(row{scenario: name, passed: !t.Failed(), detail: strings.Join(r.detail, "; "), extra: r.extra, hasExtra: r.hasExtra})
	})
	return r
}

func (r *report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.detail = append(r.detail, fmt.Sprintf(format, args...))
}

func (r *report) setExtra(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extra, r.hasExtra = d, true
}
