package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestGatesArePerCanary(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	check := func(name string) int {
		code, _ := ts.post(t, "/gate/check", name, "ns", nil)
		return code
	}

	g.Expect(check("a")).To(Equal(http.StatusForbidden), "gates start closed")
	g.Expect(check("b")).To(Equal(http.StatusForbidden))

	code, _ := ts.post(t, "/gate/open", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(check("a")).To(Equal(http.StatusOK))
	g.Expect(check("b")).To(Equal(http.StatusForbidden), "opening a leaves b closed")
	code, _ = ts.post(t, "/gate/check", "a", "other", nil)
	g.Expect(code).To(Equal(http.StatusForbidden), "the namespace is part of the key")

	code, _ = ts.post(t, "/gate/close", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(check("a")).To(Equal(http.StatusForbidden))

	code, _ = ts.post(t, "/gate/approve", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	code, _ = ts.post(t, "/gate/halt", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusForbidden))
	g.Expect(check("a")).To(Equal(http.StatusForbidden), "approve and halt keep no state")
}

func TestRollbackGates(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")

	code, _ := ts.post(t, "/rollback/check", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusForbidden), "no rollback until requested")
	code, _ = ts.post(t, "/rollback/open", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = ts.post(t, "/rollback/check", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	code, _ = ts.post(t, "/rollback/check", "b", "ns", nil)
	g.Expect(code).To(Equal(http.StatusForbidden))
	code, _ = ts.post(t, "/gate/check", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusForbidden), "rollback and gate are separate")
	code, _ = ts.post(t, "/rollback/close", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusAccepted))
	code, _ = ts.post(t, "/rollback/check", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusForbidden))
}

func TestNamespaceRegexpRefuses(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, "team-.*", "")

	for _, path := range []string{"/", "/gate/open", "/gate/check", "/rollback/open"} {
		code, body := ts.post(t, path, "a", "prod", map[string]string{"type": "bash", "cmd": "true"})
		g.Expect(code).To(Equal(http.StatusForbidden), path)
		g.Expect(body).To(ContainSubstring(`namespace "prod" is not allowed`), path)
	}
	code, _ := ts.post(t, "/", "a", "team-a", map[string]string{"type": "bash", "cmd": "true"})
	g.Expect(code).To(Equal(http.StatusOK))
	code, _ = ts.post(t, "/", "a", "xteam-a", map[string]string{"type": "bash", "cmd": "true"})
	g.Expect(code).To(Equal(http.StatusForbidden), "the regexp must match the whole namespace")
}

func TestBearerToken(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "s3cret")

	code, _ := ts.post(t, "/gate/approve", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusOK), "right token")

	anon := &testServer{server: ts.server, url: ts.url}
	for _, path := range []string{"/", "/gate/open", "/gate/check", "/gate/approve", "/rollback/check"} {
		code, _ := anon.post(t, path, "a", "ns", nil)
		g.Expect(code).To(Equal(http.StatusUnauthorized), path)
	}
	wrong := &testServer{server: ts.server, url: ts.url, token: "s3cre"}
	code, _ = wrong.post(t, "/gate/approve", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusUnauthorized), "wrong token")

	code, body := anon.do(t, http.MethodGet, "/healthz", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(Equal("ok"))
	code, _ = anon.do(t, http.MethodGet, "/metrics", nil)
	g.Expect(code).To(Equal(http.StatusOK))
}

func TestBadRequests(t *testing.T) {
	ts := newTestServer(t, ".*", "")
	cases := []struct {
		name     string
		path     string
		body     string
		wantCode int
		wantText string
	}{
		{"malformed JSON", "/", `{"name":`, 400, "malformed JSON"},
		{"malformed JSON on a gate", "/gate/open", `not json`, 400, "malformed JSON"},
		{"no name", "/", `{"namespace":"ns","metadata":{"type":"bash","cmd":"true"}}`, 400, "name and a namespace"},
		{"no type", "/", `{"name":"a","namespace":"ns"}`, 400, "metadata.type is required"},
		{"unknown type", "/", `{"name":"a","namespace":"ns","metadata":{"type":"helm","cmd":"x"}}`, 400, `unsupported metadata.type "helm"`},
		{"bash without cmd", "/", `{"name":"a","namespace":"ns","metadata":{"type":"bash"}}`, 400, "metadata.cmd is required"},
		{"bad timeout", "/", `{"name":"a","namespace":"ns","metadata":{"type":"bash","cmd":"true","timeout":"soon"}}`, 400, "metadata.timeout"},
		{"negative timeout", "/", `{"name":"a","namespace":"ns","metadata":{"cmd":"true","timeout":"-1s"}}`, 400, "metadata.timeout"},
		{"bad logCmdOutput", "/", `{"name":"a","namespace":"ns","metadata":{"type":"bash","cmd":"true","logCmdOutput":"yes"}}`, 400, "metadata.logCmdOutput"},
		{"too large", "/", `{"name":"` + strings.Repeat("a", maxBodyBytes) + `"}`, 413, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			code, body := ts.do(t, http.MethodPost, tc.path, []byte(tc.body))
			g.Expect(code).To(Equal(tc.wantCode))
			g.Expect(body).To(ContainSubstring(tc.wantText))
		})
	}

	g := NewWithT(t)
	code, _ := ts.do(t, http.MethodGet, "/", nil)
	g.Expect(code).To(Equal(http.StatusMethodNotAllowed))
	code, _ = ts.do(t, http.MethodPost, "/nope", nil)
	g.Expect(code).To(Equal(http.StatusNotFound))
}

func TestPanicBecomes500(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	h := ts.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	g.Expect(rec.Code).To(Equal(http.StatusInternalServerError))
}

func TestMetricsCountTasks(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")

	code, _ := ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": "true"})
	g.Expect(code).To(Equal(http.StatusOK))
	code, _ = ts.post(t, "/", "a", "ns", map[string]string{"type": "bash", "cmd": "false"})
	g.Expect(code).To(Equal(http.StatusInternalServerError))
	code, _ = ts.post(t, "/", "a", "ns", map[string]string{"type": "nope"})
	g.Expect(code).To(Equal(http.StatusBadRequest))

	code, body := ts.do(t, http.MethodGet, "/metrics", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(ContainSubstring(`serin_tester_tasks_total{outcome="success",type="bash"} 1`))
	g.Expect(body).To(ContainSubstring(`serin_tester_tasks_total{outcome="failure",type="bash"} 1`))
	g.Expect(body).To(ContainSubstring(`serin_tester_tasks_total{outcome="invalid",type="unknown"} 1`))
	g.Expect(body).To(ContainSubstring(`# TYPE serin_tester_load_request_duration_seconds histogram`))
}

// TestBackgroundTaskPanicIsContained: a panicking task is recovered, the
// tester keeps serving, and shutdown still waits for the others.
func TestBackgroundTaskPanicIsContained(t *testing.T) {
	g := NewWithT(t)
	ts := newTestServer(t, ".*", "")
	done := make(chan struct{})
	g.Expect(ts.startBackground(func() {
		defer close(done)
		panic("a bug in one task")
	})).To(BeTrue())
	<-done
	code, _ := ts.post(t, "/gate/check", "a", "ns", nil)
	g.Expect(code).To(Equal(http.StatusForbidden), "still serving: the closed gate answers")
}
