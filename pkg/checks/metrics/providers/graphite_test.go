package providers

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"
)

const graphiteQuery = `asPercent(sumSeries(stats.timers.podinfo.*.5xx.count), sumSeries(stats.timers.podinfo.*.count))` + trickyQuery

func graphiteConfig(address string) Config {
	return Config{
		Type:    "graphite",
		Address: address + "/graphite/", // a sub-path and a trailing slash
		Headers: map[string][]string{extraHeader: {extraHeaderValue}},
		Credentials: map[string][]byte{
			"username": []byte("flagger"),
			"password": []byte("graphite-pass-e61f"),
		},
	}
}

func checkGraphiteRequest(t *testing.T, r *http.Request, _ []byte) {
	t.Helper()
	if r.Method != http.MethodGet || r.URL.Path != "/graphite/render" {
		t.Errorf("request = %s %s, want GET /graphite/render", r.Method, r.URL.Path)
	}
	assertParams(t, r, map[string][]string{"target": {graphiteQuery}, "from": {"-120s"}, "format": {"json"}})
	assertHeader(t, r, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("flagger:graphite-pass-e61f")))
	assertHeader(t, r, extraHeader, extraHeaderValue)
}

func TestGraphiteQuery(t *testing.T) {
	runQueryCases(t, graphiteConfig, graphiteQuery, 2*time.Minute, checkGraphiteRequest, []queryCase{
		{name: "last datapoint", reply: reply{body: `[{"target":"x","tags":{"name":"x"},"datapoints":[[1.5,1700000000],[2.5,1700000060]]}]`}, want: 2.5},
		{name: "trailing nulls skipped", reply: reply{body: `[{"target":"x","datapoints":[[4,1700000000],[null,1700000060],[null,1700000120]]}]`}, want: 4},
		{name: "first target only", reply: reply{body: `[{"target":"a","datapoints":[[1,1700000000]]},{"target":"b","datapoints":[[2,1700000000]]}]`}, want: 1},
		{name: "no targets", reply: reply{body: `[]`}, wantIs: ErrNoData},
		{name: "only nulls", reply: reply{body: `[{"target":"x","datapoints":[[null,1700000000]]}]`}, wantIs: ErrNoData},
		{name: "bad target", reply: reply{status: http.StatusBadRequest, body: "Invalid function call: asPercent(sumSeries(\n"},
			wantErr: []string{"HTTP 400 Bad Request: Invalid function call: asPercent(sumSeries("}},
		{name: "unauthorized", reply: reply{status: http.StatusUnauthorized, body: "401 Authorization Required\n"},
			wantErr: []string{"HTTP 401 Unauthorized: 401 Authorization Required"}},
		{name: "internal error", reply: reply{status: http.StatusInternalServerError,
			body: "<h1>Server Error (500)</h1>\n<pre>Traceback (most recent call last):\n  File \"render/views.py\"</pre>"},
			wantErr: []string{"HTTP 500 Internal Server Error: <h1>Server Error (500)</h1> <pre>Traceback"}},
		{name: "rate limited", reply: reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}},
			wantErr: []string{"rate limited (HTTP 429; retry after Wed, 21 Oct 2015 07:28:00 GMT)"}},
		{name: "password echoed", reply: reply{status: http.StatusForbidden, body: "user flagger with password graphite-pass-e61f denied"},
			wantErr: []string{"HTTP 403", "with password [redacted] denied"}},
		{name: "malformed body", reply: reply{body: `[{"target":"x","datapoints":[[1.5,`}, wantErr: []string{"decoding response"}},
	})
}

func TestGraphiteTimeout(t *testing.T) {
	t.Parallel() // waits out its timeout: overlap those waits
	testHung(t, graphiteConfig, graphiteQuery)
}
