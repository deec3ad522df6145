package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// writeTokens writes a tokens directory as files namespace → token.
func writeTokens(t *testing.T, dir string, tokens map[string]string) {
	t.Helper()
	for ns, token := range tokens {
		if err := os.WriteFile(filepath.Join(dir, ns), []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeClock drives the tokens directory's cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func useClock(ts *testServer) *fakeClock {
	c := &fakeClock{now: time.Now()}
	a := ts.cfg.auth
	a.mu.Lock()
	a.now = c.Now
	a.mu.Unlock()
	return c
}

func TestNoTokenConfiguredRefusesEverything(t *testing.T) {
	g := NewWithT(t)
	ts := newFlagServer(t)
	for _, token := range []string{"", "anything"} {
		for _, path := range []string{"/", "/gate/open", "/gate/check", "/gate/approve", "/rollback/open"} {
			code, body := ts.as(token).post(t, path, "a", "ns", map[string]string{"type": "load", "url": "http://example.com"})
			g.Expect(code).To(Equal(http.StatusUnauthorized), path)
			g.Expect(body).To(ContainSubstring("no token configured and refuses every request"))
		}
	}
	code, _ := ts.do(t, http.MethodGet, "/healthz", nil)
	g.Expect(code).To(Equal(http.StatusOK), "health needs no token")

	level, mode := ts.cfg.auth.mode()
	g.Expect(level).To(Equal(slog.LevelError))
	g.Expect(mode).To(ContainSubstring("EVERY REQUEST IS REFUSED with 401"))
}

func TestInsecureNoAuthAcceptsAllAndSaysSo(t *testing.T) {
	g := NewWithT(t)
	ts := newFlagServer(t, "--insecure-no-auth")
	code, _ := ts.post(t, "/gate/open", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusAccepted))
	level, mode := ts.cfg.auth.mode()
	g.Expect(level).To(Equal(slog.LevelWarn))
	g.Expect(mode).To(ContainSubstring("--insecure-no-auth"))
}

// TestNamespaceTokenActsForItsNamespaceOnly: team-a's token cannot open,
// check or run anything for a payload that claims team-b.
func TestNamespaceTokenActsForItsNamespaceOnly(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	writeTokens(t, dir, map[string]string{"team-a": "token-a\n", "team-b": "  token-b  "})
	ts := newFlagServer(t, "--tokens-dir", dir, "--bearer-token", "operator", "--namespace-regexp", "team-.*")
	a, b, op := ts.as("token-a"), ts.as("token-b"), ts.as("operator")

	code, _ := a.post(t, "/gate/open", "app", "team-a", nil)
	g.Expect(code).To(Equal(http.StatusAccepted), "team-a's token opens team-a's gate (file content trimmed)")
	code, _ = b.post(t, "/gate/check", "app", "team-b", nil)
	g.Expect(code).To(Equal(http.StatusForbidden), "team-b's gate is still closed")

	for _, path := range []string{"/", "/gate/open", "/gate/close", "/gate/check", "/gate/approve", "/rollback/open"} {
		code, body := a.post(t, path, "app", "team-b", map[string]string{"type": "bash", "cmd": "true"})
		g.Expect(code).To(Equal(http.StatusForbidden), path)
		g.Expect(body).To(ContainSubstring(`the bearer token is not for namespace "team-b"`), path)
	}
	code, _ = b.post(t, "/gate/check", "app", "team-b", nil)
	g.Expect(code).To(Equal(http.StatusForbidden), "team-a's token did not open team-b's gate")

	code, _ = op.post(t, "/gate/open", "app", "team-b", nil)
	g.Expect(code).To(Equal(http.StatusAccepted), "the operator token acts for every namespace")
	code, _ = b.post(t, "/gate/check", "app", "team-b", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	code, body := op.post(t, "/gate/open", "app", "prod", nil)
	g.Expect(code).To(Equal(http.StatusForbidden), "--namespace-regexp still filters the operator token")
	g.Expect(body).To(ContainSubstring("--namespace-regexp"))

	for _, bad := range []string{"", "token-", "TOKEN-A", "token-a-and-more", "token-b-"} {
		code, _ := ts.as(bad).post(t, "/gate/check", "app", "team-a", nil)
		g.Expect(code).To(Equal(http.StatusUnauthorized), "token %q", bad)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/gate/check", strings.NewReader(`{"name":"app","namespace":"team-a"}`))
	req.Header.Set("Authorization", "Basic token-a")
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized), "only the Bearer scheme")
}

// TestTokensDirFollowsTheMountedSecret: a Secret mounted as a volume is
// symlinks into a ..data directory that the kubelet swaps; namespaces
// added show at once, removed ones stop within the cache's TTL.
func TestTokensDirFollowsTheMountedSecret(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	mount := func(gen string, tokens map[string]string) {
		g.Expect(os.Mkdir(filepath.Join(dir, gen), 0o700)).To(Succeed())
		writeTokens(t, filepath.Join(dir, gen), tokens)
		tmp := filepath.Join(dir, "..data_tmp")
		g.Expect(os.Symlink(gen, tmp)).To(Succeed())
		g.Expect(os.Rename(tmp, filepath.Join(dir, "..data"))).To(Succeed())
		for ns := range tokens {
			_ = os.Symlink(filepath.Join("..data", ns), filepath.Join(dir, ns))
		}
	}
	mount("..gen1", map[string]string{"team-a": "token-a"})
	ts := newFlagServer(t, "--tokens-dir", dir)
	clock := useClock(ts)
	check := func(token, ns string) int {
		code, _ := ts.as(token).post(t, "/gate/check", "app", ns, nil)
		return code
	}
	g.Expect(check("token-a", "team-a")).To(Equal(http.StatusForbidden), "authenticated: the gate is closed")

	mount("..gen2", map[string]string{"team-a": "token-a2", "team-c": "token-c"})
	clock.Add(tokensMissRetry)
	g.Expect(check("token-c", "team-c")).To(Equal(http.StatusForbidden), "a new namespace works without waiting for the TTL")
	g.Expect(check("token-a2", "team-a")).To(Equal(http.StatusForbidden), "a rotated token works")
	g.Expect(check("token-a", "team-a")).To(Equal(http.StatusUnauthorized), "the old token no longer does")

	g.Expect(os.Remove(filepath.Join(dir, "team-c"))).To(Succeed())
	g.Expect(check("token-c", "team-c")).To(Equal(http.StatusForbidden), "cached until the TTL")
	clock.Add(tokensTTL)
	g.Expect(check("token-c", "team-c")).To(Equal(http.StatusUnauthorized), "removed after the TTL")

	g.Expect(os.RemoveAll(dir)).To(Succeed())
	clock.Add(tokensTTL)
	g.Expect(check("token-a2", "team-a")).To(Equal(http.StatusUnauthorized), "an unreadable directory fails closed")
}

func TestReadTokensDirSkipsWhatIsNotAToken(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	writeTokens(t, dir, map[string]string{
		"team-a": "a", "team-b": "shared", "team-c": "shared\n", "Not_A_Namespace": "x", "empty": " \n", ".hidden": "h",
		"big": strings.Repeat("x", maxTokenFileBytes+1),
	})
	g.Expect(os.Mkdir(filepath.Join(dir, "subdir"), 0o700)).To(Succeed())
	tokens, problems, err := readTokensDir(dir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tokens).To(HaveLen(1))
	g.Expect(tokens[0].namespace).To(Equal("team-a"))
	g.Expect(problems).To(ConsistOf(
		ContainSubstring(`"Not_A_Namespace": not a namespace name`),
		ContainSubstring(`"empty": empty token`),
		ContainSubstring(`"big": larger than`),
		ContainSubstring("namespaces team-b, team-c share a token"),
	))
	for _, p := range problems {
		g.Expect(p).NotTo(ContainSubstring("shared"), "problems never quote a token")
	}

	_, err = parseFlagsQuiet("--tokens-dir", filepath.Join(dir, "missing"))
	g.Expect(err).To(MatchError(ContainSubstring("--tokens-dir")), "a missing directory stops the start-up")
}

// TestTokensNeverLogged: whatever the requests, right or wrong tokens, and
// whatever the directory holds, no token reaches the log.
func TestTokensNeverLogged(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	secrets := map[string]string{"team-a": "SECRET-A-1234", "team-b": "SECRET-SHARED", "team-c": "SECRET-SHARED", "team-d": "SECRET-OPERATOR"}
	writeTokens(t, dir, secrets)
	ts := newFlagServer(t, "--tokens-dir", dir, "--bearer-token", "SECRET-OPERATOR", "--log-level", "debug", "--insecure-no-auth=false")
	clock := useClock(ts)
	for _, token := range []string{"SECRET-A-1234", "SECRET-SHARED", "SECRET-OPERATOR", "SECRET-WRONG", ""} {
		for _, ns := range []string{"team-a", "team-b"} {
			ts.as(token).post(t, "/gate/open", "app", ns, nil)
		}
		clock.Add(tokensTTL)
	}
	writeTokens(t, dir, map[string]string{"team-e": "SECRET-NEW"})
	clock.Add(tokensTTL)
	ts.as("SECRET-NEW").post(t, "/gate/check", "app", "team-e", nil)

	logs := ts.logs.String()
	g.Expect(logs).To(ContainSubstring("namespace tokens loaded"), "the log says what was read")
	g.Expect(logs).To(ContainSubstring("request refused"), "and what was refused")
	g.Expect(logs).To(ContainSubstring("share a token"))
	g.Expect(logs).To(ContainSubstring("is the operator token"))
	g.Expect(logs).NotTo(ContainSubstring("SECRET"))
}

func TestAuthModeNamesNoToken(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--bearer-token", "SECRET"},
		{"--tokens-dir", dir},
		{"--tokens-dir", dir, "--bearer-token", "SECRET"},
	} {
		cfg, err := parseFlagsQuiet(args...)
		g.Expect(err).NotTo(HaveOccurred())
		level, mode := cfg.auth.mode()
		g.Expect(level).To(Equal(slog.LevelInfo), "%v", args)
		g.Expect(mode).To(ContainSubstring("token"))
		g.Expect(mode).NotTo(ContainSubstring("SECRET"))
	}
}

func parseFlagsQuiet(args ...string) (config, error) {
	cfg, _, err := parseFlags(args, io.Discard)
	return cfg, err
}
