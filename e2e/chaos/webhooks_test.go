//go:build chaos

package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	serinv1 "github.com/serin-dev/serin/pkg/apis/serin/v1beta1"

	"github.com/serin-dev/serin/e2e/stack"
)

// webhookShard is served by the one controller of all webhook scenarios,
// with few check workers, so a hanging webhook would show in the others.
const webhookShard = "webhooks"

// hookTimeout is the rollout webhooks' timeout.
const hookTimeout = "2s"

// webhookScript is one release of two weight steps with a rollout webhook
// at url, served by the shared controller.
func webhookScript(url string, final serinv1.CanaryPhase) script {
	return script{final: final, canary: func(c *serinv1.Canary) {
		c.Labels[shardLabel] = webhookShard
		c.Spec.Analysis.Webhooks = []serinv1.CanaryWebhook{{Name: "acceptance", Type: serinv1.RolloutHook, URL: url, Timeout: hookTimeout}}
	}}
}

// A misbehaving webhook target and what the analysis rules make of it.
type hookCase struct {
	name string
	// serve starts the target and returns the webhook URL.
	serve  func(t *testing.T, calls *atomic.Int32) string
	final  serinv1.CanaryPhase
	failed int // failed checks at the end
	// errors is the range of calls without an answer
	// (status.webhooks[].errors) the release counts.
	minErrors, maxErrors int
}

func plain(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

var hookCases = []hookCase{
	{
		// No answer within the timeout, twice: held twice, counted as
		// errors, no failed check (below the limit of 3), then promoted.
		name: "hang-past-timeout", final: serinv1.CanaryPhaseSucceeded, failed: 0, minErrors: 2, maxErrors: 2,
		serve: func(t *testing.T, calls *atomic.Int32) string {
			return plain(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= 2 {
					select {
					case <-r.Context().Done():
					case <-time.After(time.Minute):
					}
					return
				}
				w.WriteHeader(http.StatusOK)
			})
		},
	},
	{
		name: "5xx", final: serinv1.CanaryPhaseFailed, failed: 2,
		serve: func(t *testing.T, calls *atomic.Int32) string {
			return plain(t, func(w http.ResponseWriter, _ *http.Request) {
				calls.Add(1)
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
			})
		},
	},
	{
		// An answer of 200: the status is the verdict, and only the
		// first 64 KiB of the body are read.
		name: "endless-body", final: serinv1.CanaryPhaseSucceeded,
		serve: func(t *testing.T, calls *atomic.Int32) string {
			chunk := []byte(strings.Repeat("x", 32<<10))
			return plain(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(http.StatusOK)
				for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && r.Context().Err() == nil; {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
		},
	},
	{
		name: "garbage-json", final: serinv1.CanaryPhaseSucceeded,
		serve: func(t *testing.T, calls *atomic.Int32) string {
			return plain(t, func(w http.ResponseWriter, _ *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				fmt.Fprint(w, `{"ok": tru}}]`+"\x00\xff")
			})
		},
	},
	{
		// A redirect to itself: after 3 redirects the last answer, a
		// 307, is a failed check.
		name: "redirect-loop", final: serinv1.CanaryPhaseFailed, failed: 2,
		serve: func(t *testing.T, calls *atomic.Int32) string {
			return plain(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
			})
		},
	},
	{
		// A certificate nobody signed: no answer at every interval; 3 in
		// a row count as one failed check, so the release fails after 6.
		name: "tls-self-signed", final: serinv1.CanaryPhaseFailed, failed: 2, minErrors: 6, maxErrors: 6,
		serve: func(t *testing.T, calls *atomic.Int32) string {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				calls.Add(1)
				w.WriteHeader(http.StatusOK)
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		},
	},
	{
		name: "https-to-plain-http", final: serinv1.CanaryPhaseFailed, failed: 2, minErrors: 6, maxErrors: 6,
		serve: func(t *testing.T, calls *atomic.Int32) string {
			return strings.Replace(plain(t, func(w http.ResponseWriter, _ *http.Request) {
				calls.Add(1)
				w.WriteHeader(http.StatusOK)
			}), "http://", "https://", 1)
		},
	},
}

// testWebhooks runs every misbehaving webhook at once on one controller,
// next to a release whose webhook behaves (the baseline), which must
// progress meanwhile; the controller's memory must stay bounded.
func testWebhooks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	leaseNS := "chaos-webhooks-controller"
	if err := st.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNS}}); err != nil {
		t.Fatal(err)
	}
	ctl := startController(t, "shared", controllerOptions{shard: webhookShard, leaseNS: leaseNS,
		flags: []string{"--check-workers=4", "--check-workers-per-namespace=2"}})
	before, err := waitMemory(ctx, ctl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		after, err := memory(context.Background(), ctl)
		r := row{scenario: "webhooks/controller-memory"}
		switch {
		case err != nil:
			r.detail = err.Error()
			t.Error(err)
		default:
			r.detail = fmt.Sprintf("heap in use %s → %s, RSS %s → %s", mib(before.heap), mib(after.heap), mib(before.rss), mib(after.rss))
			// The endless bodies alone would be gigabytes.
			r.passed = after.heap < before.heap+64<<20
			if !r.passed {
				t.Errorf("the controller's heap grew from %s to %s", mib(before.heap), mib(after.heap))
			}
		}
		table.add(r)
	})

	t.Run("baseline", func(t *testing.T) {
		t.Parallel()
		healthy := plain(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
		runBaseline(t, "webhooks", "chaos-webhook-baseline", webhookScript(healthy, serinv1.CanaryPhaseSucceeded), ctl)
		b := baselineOf("webhooks")
		// Checks run off the reconcile workers: hanging webhooks in
		// other namespaces hold only their own releases.
		if b.err == nil && b.out.wall > time.Minute {
			t.Errorf("the release next to the misbehaving webhooks took %v", b.out.wall)
		}
	})
	for _, hc := range hookCases {
		t.Run(hc.name, func(t *testing.T) {
			t.Parallel()
			rep := newReport(t)
			var calls atomic.Int32
			url := hc.serve(t, &calls)
			r := newRelease(t, "chaos-webhook-"+hc.name, webhookScript(url, hc.final))
			if err := r.run(); err != nil {
				t.Fatal(err)
			}
			got, err := r.outcome()
			if err != nil {
				t.Fatal(err)
			}
			last := r.rec.last()
			errs := r.rec.maxOf(func(s snapshot) int { return s.hookErrors["acceptance"] })
			rep.note("%s after %d calls; failed checks %d; no-answer errors %d", got.phase, calls.Load(), last.failedChecks, errs)
			if got.phase != hc.final {
				t.Errorf("ended %s, want %s", got.phase, hc.final)
			}
			if last.failedChecks != hc.failed {
				t.Errorf("failed checks %d, want %d", last.failedChecks, hc.failed)
			}
			if errs < hc.minErrors || errs > hc.maxErrors {
				t.Errorf("calls without an answer counted %d, want %d to %d", errs, hc.minErrors, hc.maxErrors)
			}
			if len(got.inconsistent) > 0 {
				t.Errorf("stored versions out of order: %v", got.inconsistent)
			}
			if hc.final == serinv1.CanaryPhaseFailed {
				for _, p := range got.phases {
					if p == serinv1.CanaryPhasePromoting {
						t.Errorf("a failing release was promoted: %v", got.phases)
					}
				}
				if got.primaryImage != stack.AppImage || got.traffic != 0 {
					t.Errorf("primary %s with %d%% on the canary after the rollback", got.primaryImage, got.traffic)
				}
				b := baselineOf("webhooks")
				<-b.done
				rep.setExtra(got.wall - b.out.wall)
				return
			}
			compare(t, rep, "webhooks", got)
		})
	}
}

type mem struct{ heap, rss float64 }

func mib(b float64) string { return fmt.Sprintf("%.0fMiB", b/(1<<20)) }

// memory reads the controller's heap in use and resident set from its
// /metrics.
func memory(ctx context.Context, c *controller) (mem, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.metricsAddr+"/metrics", nil)
	if err != nil {
		return mem{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return mem{}, err
	}
	defer resp.Body.Close()
	var m mem
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.heap = v
		case "process_resident_memory_bytes":
			m.rss = v
		}
	}
	if m.heap == 0 {
		return m, fmt.Errorf("no go_memstats_heap_inuse_bytes at %s", c.metricsAddr)
	}
	return m, nil
}

func waitMemory(ctx context.Context, c *controller) (mem, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := memory(ctx, c)
		if err == nil || time.Now().After(deadline) {
			return m, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
