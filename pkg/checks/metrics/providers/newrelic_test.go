package providers

import (
	"net/http"
	"testing"
	"time"
)

const nrQuery = `SELECT filter(count(*), WHERE http.statusCode >= 500) * 100 / count(*) FROM Transaction WHERE appName = 'podinfo' SINCE 1 minute ago` + trickyQuery

func nrConfig(address string) Config {
	return Config{
		Type:    "newrelic",
		Address: address,
		Headers: map[string][]string{extraHeader: {extraHeaderValue}},
		Credentials: map[string][]byte{
			"newrelic_account_id": []byte("2847561"),
			"newrelic_query_key":  []byte("NRIQ-query-key-c3e8"),
		},
	}
}

func checkNRRequest(t *testing.T, r *http.Request, _ []byte) {
	t.Helper()
	if r.Method != http.MethodGet || r.URL.Path != "/v1/accounts/2847561/query" {
		t.Errorf("request = %s %s, want GET /v1/accounts/2847561/query", r.Method, r.URL.Path)
	}
	assertParams(t, r, map[string][]string{"nrql": {nrQuery}})
	assertHeader(t, r, "X-Query-Key", "NRIQ-query-key-c3e8")
	assertHeader(t, r, extraHeader, extraHeaderValue)
	assertHeader(t, r, "Accept", "application/json")
}

func TestNewRelicQuery(t *testing.T) {
	const metadata = `"metadata":{"eventTypes":["Transaction"],"contents":[{"function":"average","attribute":"duration"}]}`
	runQueryCases(t, nrConfig, nrQuery, time.Minute, checkNRRequest, []queryCase{
		{name: "average", reply: reply{body: `{"results":[{"average":1.2}],` + metadata + `}`}, want: 1.2},
		{name: "result", reply: reply{body: `{"results":[{"result":3}],` + metadata + `}`}, want: 3},
		{name: "first key in document order", reply: reply{body: `{"results":[{"zeta":1,"alpha":2}]}`}, want: 1},
		{name: "nested percentiles", reply: reply{body: `{"results":[{"percentiles":{"95":123.5}}]}`}, want: 123.5},
		{name: "first result only", reply: reply{body: `{"results":[{"count":5},{"count":6}]}`}, want: 5},
		{name: "null skipped", reply: reply{body: `{"results":[{"latest":null,"count":9}]}`}, want: 9},
		{name: "no results", reply: reply{body: `{"results":[],` + metadata + `}`}, wantIs: ErrNoData},
		{name: "only null", reply: reply{body: `{"results":[{"latest":null}]}`}, wantIs: ErrNoData},
		{name: "bad NRQL", reply: reply{status: http.StatusBadRequest, body: `{"error":"NRQL Syntax Error: Error at line 1 position 8, unexpected 'FORM'"}`},
			wantErr: []string{"HTTP 400 Bad Request: NRQL Syntax Error"}},
		{name: "unauthorized", reply: reply{status: http.StatusUnauthorized,
			body: `{"error":"Invalid query key NRIQ-query-key-c3e8 for account 2847561"}`},
			wantErr: []string{"HTTP 401 Unauthorized: Invalid query key [redacted] for account [redacted]"}},
		{name: "internal error", reply: reply{status: http.StatusInternalServerError, body: `{"error":"An internal error occurred"}`},
			wantErr: []string{"HTTP 500 Internal Server Error: An internal error occurred"}},
		{name: "rate limited", reply: reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "30"},
			body: `{"error":"Too many requests"}`}, wantErr: []string{"rate limited (HTTP 429; retry after 30s): Too many requests"}},
		{name: "malformed body", reply: reply{body: `{"results":[{"average":`}, wantErr: []string{"decoding response"}},
	})
}

func TestNewRelicTimeout(t *testing.T) {
	t.Parallel() // waits out its timeout: overlap those waits
	testHung(t, nrConfig, nrQuery)
}
