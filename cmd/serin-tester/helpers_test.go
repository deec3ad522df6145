package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer runs the real handler behind an httptest server.
type testServer struct {
	*server
	url   string
	token string
	// logs is what the server logged.
	logs *syncBuffer
}

// newTestServer serves with commands enabled and loads allowed to
// loopback, which the tests' targets listen on; token, when not empty, is
// the operator token, else authentication is off.
func newTestServer(t *testing.T, nsExpr, token string) *testServer {
	t.Helper()
	args := []string{"--namespace-regexp", nsExpr, "--enable-commands", "--load-allow-host", "127.0.0.0/8"}
	if token == "" {
		args = append(args, "--insecure-no-auth")
	} else {
		args = append(args, "--bearer-token", token)
	}
	ts := newFlagServer(t, args...)
	ts.token = token
	return ts
}

// newFlagServer serves with the configuration that the flags args make,
// the defaults otherwise, as the binary would.
func newFlagServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	t.Setenv(tokenEnv, "")
	logs := &syncBuffer{}
	cfg, _, err := parseFlags(args, logs)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(cfg)
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
	return &testServer{server: s, url: ts.URL, logs: logs}
}

// as is the same server, called with another token.
func (ts *testServer) as(token string) *testServer {
	c := *ts
	c.token = token
	return &c
}

// syncBuffer is a log destination that tests read while the server
// writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
