package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testServer runs the real handler behind an httptest server.
type testServer struct {
	*server
	url   string
	token string
}

func newTestServer(t *testing.T, nsExpr, token string) *testServer {
	t.Helper()
	s := newServer(config{
		namespaces: regexp.MustCompile(`^(?:` + nsExpr + `)$`),
		token:      token,
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	// Registered last so it runs first: killing the tasks lets ts.Close
	// return.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testServer{server: s, url: ts.URL, token: token}
}

// post sends a payload for canary name.namespace to path.
func (ts *testServer) post(t *testing.T, path, name, namespace string, metadata map[string]string) (int, string) {
	t.Helper()
	body, err := json.Marshal(payload{Name: name, Namespace: namespace, Phase: "Progressing", Checksum: "abc", Metadata: metadata})
	if err != nil {
		t.Fatal(err)
	}
	return ts.do(t, http.MethodPost, path, body)
}

func (ts *testServer) do(t *testing.T, method, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ts.token != "" {
		req.Header.Set("Authorization", "Bearer "+ts.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// processAlive tells whether pid is a live process; a zombie, which an
// init that does not reap may leave behind, counts as gone.
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// readPID waits for a command to write its pid to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

// taskCount scrapes /metrics for the count of tasks of a type and outcome.
func (ts *testServer) taskCount(t *testing.T, taskType, outcome string) float64 {
	t.Helper()
	_, body := ts.do(t, http.MethodGet, "/metrics", nil)
	prefix := `serin_tester_tasks_total{outcome="` + outcome + `",type="` + taskType + `"} `
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}
