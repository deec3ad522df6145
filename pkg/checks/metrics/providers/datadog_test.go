package providers

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

const ddQuery = `sum:trace.http.request.errors{service:podinfo,env:prod}.as_count() / sum:trace.http.request.hits{service:podinfo}.as_count()` + trickyQuery

func ddConfig(address string) Config {
	return Config{
		Type:    "datadog",
		Address: address,
		Headers: map[string][]string{extraHeader: {extraHeaderValue}},
		Credentials: map[string][]byte{
			"datadog_api_key":         []byte("dd-api-key-91b2"),
			"datadog_application_key": []byte("dd-app-key-5d07"),
		},
	}
}

func checkDDRequest(t *testing.T, r *http.Request, _ []byte) {
	t.Helper()
	if r.Method != http.MethodGet || r.URL.Path != "/api/v1/query" {
		t.Errorf("request = %s %s, want GET /api/v1/query", r.Method, r.URL.Path)
	}
	q := r.URL.Query()
	from, errFrom := strconv.ParseInt(q.Get("from"), 10, 64)
	to, errTo := strconv.ParseInt(q.Get("to"), 10, 64)
	if errFrom != nil || errTo != nil || to-from != 300 {
		t.Errorf("from=%q to=%q, want a 300s window in unix seconds", q.Get("from"), q.Get("to"))
	}
	if now := time.Now().Unix(); to > now || to < now-5 {
		t.Errorf("to = %d, want now (%d)", to, now)
	}
	assertParams(t, r, map[string][]string{"from": {q.Get("from")}, "to": {q.Get("to")}, "query": {ddQuery}})
	assertHeader(t, r, "DD-API-KEY", "dd-api-key-91b2")
	assertHeader(t, r, "DD-APPLICATION-KEY", "dd-app-key-5d07")
	assertHeader(t, r, extraHeader, extraHeaderValue)
	assertHeader(t, r, "Accept", "application/json")
}

func TestDatadogQuery(t *testing.T) {
	series := func(pointlists ...string) string {
		s := `{"status":"ok","res_type":"time_series","from_date":1700000000000,"to_date":1700000300000,"series":[`
		for i, p := range pointlists {
			if i > 0 {
				s += ","
			}
			s += `{"metric":"trace.http.request.errors","scope":"service:podinfo","pointlist":` + p + `}`
		}
		return s + `]}`
	}
	runQueryCases(t, ddConfig, ddQuery, 5*time.Minute, checkDDRequest, []queryCase{
		{name: "last point", reply: reply{body: series(`[[1700000000000,0.5],[1700000060000,1.25]]`)}, want: 1.25},
		{name: "trailing nulls skipped", reply: reply{body: series(`[[1700000000000,0.5],[1700000060000,2],[1700000120000,null]]`)}, want: 2},
		{name: "first series only", reply: reply{body: series(`[[1700000000000,3]]`, `[[1700000000000,4]]`)}, want: 3},
		{name: "no series", reply: reply{body: series()}, wantIs: ErrNoData},
		{name: "only nulls", reply: reply{body: series(`[[1700000000000,null]]`)}, wantIs: ErrNoData},
		{name: "empty pointlist", reply: reply{body: series(`[]`)}, wantIs: ErrNoData},
		{name: "error status in a 200", reply: reply{body: `{"status":"error","error":"Rule 'scope_expr' didn't match","series":[]}`},
			wantErr: []string{"query failed: Rule 'scope_expr' didn't match"}},
		{name: "bad query", reply: reply{status: http.StatusBadRequest, body: `{"errors":["Error parsing query: unable to parse sum:: Rule 'scope_expr' didn't match"]}`},
			wantErr: []string{"HTTP 400 Bad Request: Error parsing query: unable to parse"}},
		{name: "forbidden", reply: reply{status: http.StatusForbidden, body: `{"errors":["Forbidden"]}`},
			wantErr: []string{"HTTP 403 Forbidden: Forbidden"}},
		{name: "several errors", reply: reply{status: http.StatusUnauthorized, body: `{"errors":["Unauthorized","API key invalid"]}`},
			wantErr: []string{"HTTP 401", "Unauthorized; API key invalid"}},
		{name: "internal error", reply: reply{status: http.StatusInternalServerError, body: `{"errors":["Internal Server Error"]}`},
			wantErr: []string{"HTTP 500 Internal Server Error: Internal Server Error"}},
		{name: "gateway error page", reply: reply{status: http.StatusBadGateway, body: "<html>\n<body>502 Bad Gateway</body>\n</html>"},
			wantErr: []string{"HTTP 502 Bad Gateway: <html> <body>502 Bad Gateway</body> </html>"}},
		{name: "rate limited", reply: reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "7"},
			body: `{"errors":["Rate limit of 1600 requests in 3600 seconds reached."]}`},
			wantErr: []string{"rate limited (HTTP 429; retry after 7s): Rate limit of 1600 requests"}},
		{name: "keys echoed", reply: reply{status: http.StatusForbidden,
			body: `{"errors":["key dd-api-key-91b2 with application key dd-app-key-5d07 is not allowed"]}`},
			wantErr: []string{"HTTP 403", "key [redacted] with application key [redacted]"}},
		{name: "malformed body", reply: reply{body: `{"series":[{"pointlist":`}, wantErr: []string{"decoding response"}},
	})
}

func TestDatadogTimeout(t *testing.T) {
	t.Parallel() // waits out its timeout: overlap those waits
	testHung(t, ddConfig, ddQuery)
}
