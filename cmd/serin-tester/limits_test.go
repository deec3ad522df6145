package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// TestCommandsAreOffByDefault: without --enable-commands, neither cmd nor
// bash runs anything.
func TestCommandsAreOffByDefault(t *testing.T) {
	g := NewWithT(t)
	ts := newFlagServer(t, "--insecure-no-auth")
	marker := filepath.Join(t.TempDir(), "ran")
	for _, md := range []map[string]string{
		{"type": "bash", "cmd": "touch " + marker},
		{"type": "cmd", "cmd": "touch " + marker},
		{"cmd": "touch " + marker},
	} {
		code, body := ts.post(t, "/", "a", "ns", md)
		g.Expect(code).To(Equal(http.StatusForbidden), "%v", md)
		g.Expect(body).To(ContainSubstring("commands are disabled"))
		g.Expect(body).To(ContainSubstring("--enable-commands"))
	}
	g.Consistently(func() error { _, err := os.Stat(marker); return err }).WithTimeout(200 * time.Millisecond).ShouldNot(Succeed())
	g.Expect(ts.taskCount(t, typeBash, outcomeRefused)).To(Equal(1.0))
}

func TestCommandAllowPrefix(t *testing.T) {
	g := NewWithT(t)
	ts := newFlagServer(t, "--insecure-no-auth", "--enable-commands", "--command-allow-prefix", "echo", "--command-allow-prefix", "true,printf ")
	marker := filepath.Join(t.TempDir(), "ran")

	for _, cmd := range []string{"echo hello", "echo", "true", "printf x"} {
		code, body := ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": cmd})
		g.Expect(code).To(Equal(http.StatusOK), "%q: %s", cmd, body)
	}
	for _, cmd := range []string{
		"echox", "touch " + marker, " echo", "printfx",
		"echo a; touch " + marker, "echo a && touch " + marker, "echo a | sh", "echo $(touch " + marker + ")",
		"echo `touch " + marker + "`", "echo a > " + marker, "echo a\ntouch " + marker, "echo <(touch " + marker + ")",
		"true & touch " + marker,
	} {
		code, body := ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": cmd})
		g.Expect(code).To(Equal(http.StatusForbidden), "%q", cmd)
		g.Expect(body).To(ContainSubstring("command refused"), "%q", cmd)
		g.Expect(body).To(ContainSubstring("--command-allow-prefix"), "%q", cmd)
		code, _ = ts.post(t, "/", "a", "ns", map[string]string{"cmd": cmd})
		g.Expect(code).To(Equal(http.StatusForbidden), "cmd %q", cmd)
	}
	_, err := os.Stat(marker)
	g.Expect(err).To(HaveOccurred(), "no refused command ran")
}

func TestMaxCommands(t *testing.T) {
	g := NewWithT(t)
	ts := newFlagServer(t, "--insecure-no-auth", "--enable-commands", "--max-commands", "1")
	code, _ := ts.post(t, "/", "a", "ns", map[string]string{"cmd": "sleep 30"})
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, body := ts.post(t, "/", "b", "ns", map[string]string{"cmd": "sleep 30"})
	g.Expect(code).To(Equal(http.StatusTooManyRequests))
	g.Expect(body).To(ContainSubstring("--max-commands"))
	code, body = ts.post(t, "/", "b", "ns", map[string]string{"type": "bash", "cmd": "true"})
	g.Expect(code).To(Equal(http.StatusTooManyRequests), "blocking commands count too")
	g.Expect(body).To(ContainSubstring("--max-commands"))
	code, body = ts.post(t, "/", "a", "ns", map[string]string{"cmd": "sleep 30"})
	g.Expect(code).To(Equal(http.StatusAccepted), "a duplicate takes no slot")
	g.Expect(body).To(ContainSubstring("already running"))

	code, _ = ts.post(t, "/", "b", "ns", map[string]string{"cmd": "true", "timeout": "1s"})
	g.Expect(code).To(Equal(http.StatusTooManyRequests), "refused commands leave no key behind")
}

func TestMaxCommandsFreesItsSlot(t *testing.T) {
	g := NewWithT(t)
	ts := newFlagServer(t, "--insecure-no-auth", "--enable-commands", "--max-commands", "1")
	for range 3 {
		code, body := ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": "true"})
		g.Expect(code).To(Equal(http.StatusOK), body)
	}
	code, _ := ts.post(t, "/", "a", "ns", map[string]string{"cmd": "true"})
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Eventually(func() int {
		code, _ := ts.post(t, "/", "b", "ns", map[string]string{"type": "bash", "cmd": "true"})
		return code
	}).WithTimeout(2*time.Second).Should(Equal(http.StatusOK), "a finished background command frees its slot")
}

func TestMaxLoadsAndTotalRate(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t)
	ts := newFlagServer(t, "--insecure-no-auth", "--load-allow-host", "127.0.0.1", "--max-loads", "2", "--max-total-load-rate", "15")
	load := func(name, rate string, extra ...string) (int, string) {
		md := map[string]string{"type": "load", "url": tg.url, "rate": rate, "duration": "1h"}
		for i := 0; i+1 < len(extra); i += 2 {
			md[extra[i]] = extra[i+1]
		}
		return ts.post(t, "/", name, "ns", md)
	}
	code, body := load("a", "10")
	g.Expect(code).To(Equal(http.StatusAccepted), body)
	code, body = load("a", "10")
	g.Expect(code).To(Equal(http.StatusAccepted), "the same load is not started twice")
	g.Expect(body).To(ContainSubstring("already running"))
	code, body = load("b", "10")
	g.Expect(code).To(Equal(http.StatusTooManyRequests))
	g.Expect(body).To(ContainSubstring("--max-total-load-rate"))
	code, body = load("b", "5")
	g.Expect(code).To(Equal(http.StatusAccepted), body)
	code, body = load("c", "0.01")
	g.Expect(code).To(Equal(http.StatusTooManyRequests))
	g.Expect(body).To(ContainSubstring("--max-loads"))
	code, body = load("c", "1", "blocking", "true", "duration", "1s")
	g.Expect(code).To(Equal(http.StatusTooManyRequests), "blocking loads count too")
	g.Expect(body).To(ContainSubstring("--max-loads"))
}

func TestLoadRateAndDurationLimits(t *testing.T) {
	g := NewWithT(t)
	ts := newFlagServer(t, "--insecure-no-auth", "--load-allow-host", "127.0.0.1", "--max-load-rate", "50", "--max-load-duration", "2m")
	for _, tc := range []struct{ md, want map[string]string }{
		{map[string]string{"rate": "51"}, map[string]string{"text": "--max-load-rate"}},
		{map[string]string{"rate": "1e300"}, map[string]string{"text": "metadata.rate"}},
		{map[string]string{"rate": "Inf"}, map[string]string{"text": "metadata.rate"}},
		{map[string]string{"duration": "3m"}, map[string]string{"text": "--max-load-duration"}},
	} {
		tc.md["type"], tc.md["url"] = "load", "http://127.0.0.1:1"
		code, body := ts.post(t, "/", "a", "ns", tc.md)
		g.Expect(code).To(Equal(http.StatusBadRequest), "%v", tc.md)
		g.Expect(body).To(ContainSubstring(tc.want["text"]))
	}
}

func TestGatesAreBounded(t *testing.T) {
	g := NewWithT(t)
	ts := newFlagServer(t, "--insecure-no-auth", "--max-gates", "2", "--max-gates-per-namespace", "1")
	open := func(path, name, ns string) (int, string) { return ts.post(t, path, name, ns, nil) }

	code, _ := open("/gate/open", "a", "ns1")
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = open("/gate/open", "a", "ns1")
	g.Expect(code).To(Equal(http.StatusAccepted), "reopening takes no entry")
	code, body := open("/gate/open", "b", "ns1")
	g.Expect(code).To(Equal(http.StatusTooManyRequests))
	g.Expect(body).To(ContainSubstring("--max-gates-per-namespace"))
	code, _ = open("/gate/open", "a", "ns2")
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, body = open("/gate/open", "a", "ns3")
	g.Expect(code).To(Equal(http.StatusTooManyRequests))
	g.Expect(body).To(ContainSubstring("--max-gates"))
	code, _ = open("/rollback/open", "a", "ns3")
	g.Expect(code).To(Equal(http.StatusAccepted), "rollback gates are counted apart")

	code, _ = open("/gate/close", "nope", "ns3")
	g.Expect(code).To(Equal(http.StatusAccepted), "closing a closed gate is fine")
	code, _ = open("/gate/close", "a", "ns1")
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = open("/gate/open", "a", "ns3")
	g.Expect(code).To(Equal(http.StatusAccepted), "closing frees an entry")
	code, _ = open("/gate/open", "b", "ns1")
	g.Expect(code).To(Equal(http.StatusTooManyRequests), "the total is reached again")
	g.Expect(ts.gates.open).To(HaveLen(2))
}

func TestBodyLimitAndTrailingData(t *testing.T) {
	ts := newFlagServer(t, "--insecure-no-auth")
	valid := `{"name":"a","namespace":"ns"}`
	cases := []struct {
		name     string
		body     string
		wantCode int
		wantText string
	}{
		{"a payload then more than the limit", valid + strings.Repeat(" ", maxBodyBytes), 413, "larger than"},
		{"a payload then another", valid + `{"name":"b","namespace":"ns"}`, 400, "data after the payload"},
		{"a payload then garbage", valid + `x`, 400, "data after the payload"},
		{"a namespace that is not a name", `{"name":"a","namespace":"a.b"}`, 400, "not a namespace name"},
		{"an upper-case namespace", `{"name":"a","namespace":"NS"}`, 400, "not a namespace name"},
		{"a name that is not a name", `{"name":"../x","namespace":"ns"}`, 400, "not an object name"},
		{"a name with a newline", `{"name":"a\nlevel=ERROR","namespace":"ns"}`, 400, "not an object name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			code, body := ts.do(t, http.MethodPost, "/gate/open", []byte(tc.body))
			g.Expect(code).To(Equal(tc.wantCode))
			g.Expect(body).To(ContainSubstring(tc.wantText))
		})
	}
	g := NewWithT(t)
	code, _ := ts.do(t, http.MethodPost, "/gate/open", []byte(valid+"\n\t "))
	g.Expect(code).To(Equal(http.StatusAccepted), "trailing white space is fine")
}

func TestRunRejectsBadSecurityFlags(t *testing.T) {
	g := NewWithT(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--insecure-no-auth", "--bearer-token", "x"}, "--insecure-no-auth cannot be combined"},
		{[]string{"--insecure-no-auth", "--tokens-dir", t.TempDir()}, "--insecure-no-auth cannot be combined"},
		{[]string{"--command-allow-prefix", "echo"}, "needs --enable-commands"},
		{[]string{"--max-commands", "0"}, "--max-commands"},
		{[]string{"--max-loads", "-1"}, "--max-loads"},
		{[]string{"--max-gates", "0"}, "--max-gates"},
		{[]string{"--max-load-rate", "1e9"}, "--max-load-rate"},
		{[]string{"--max-load-rate", "NaN"}, "--max-load-rate"},
		{[]string{"--max-total-load-rate", "0"}, "--max-total-load-rate"},
		{[]string{"--max-load-duration", "0s"}, "--max-load-duration"},
		{[]string{"--load-allow-host", "bad host!"}, "--load-allow-host"},
		{[]string{"--load-allow-host", "10.0.0.0/33"}, "--load-allow-host"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		_, err := parseFlagsQuiet(tc.args...)
		g.Expect(err).To(MatchError(ContainSubstring(tc.want)), "%v", tc.args)
	}
}
