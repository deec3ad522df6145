package providers

import (
	"net/http"
	"testing"
	"time"
)

const dtQuery = `builtin:service.errors.total.rate:filter(eq("dt.entity.service","SERVICE-1A2B3C")):avg` + trickyQuery

func dtConfig(address string) Config {
	return Config{
		Type:        "dynatrace",
		Address:     address,
		Headers:     map[string][]string{extraHeader: {extraHeaderValue}},
		Credentials: map[string][]byte{"dynatrace_token": []byte("dt0c01.ABC.secret-9e4d")},
	}
}

func checkDTRequest(t *testing.T, r *http.Request, _ []byte) {
	t.Helper()
	if r.Method != http.MethodGet || r.URL.Path != "/api/v2/metrics/query" {
		t.Errorf("request = %s %s, want GET /api/v2/metrics/query", r.Method, r.URL.Path)
	}
	assertParams(t, r, map[string][]string{"metricSelector": {dtQuery}, "from": {"now-90s"}, "resolution": {"Inf"}})
	assertHeader(t, r, "Authorization", "Api-Token dt0c01.ABC.secret-9e4d")
	assertHeader(t, r, extraHeader, extraHeaderValue)
	assertHeader(t, r, "Accept", "application/json")
}

func TestDynatraceQuery(t *testing.T) {
	result := func(values string) string {
		return `{"totalCount":1,"nextPageKey":null,"resolution":"Inf","result":[{"metricId":"builtin:service.errors.total.rate:avg",` +
			`"dataPointCountRatio":1.0E-4,"dimensionCountRatio":0.001,"data":[{"dimensions":[],"dimensionMap":{},` +
			`"timestamps":[1700000000000],"values":` + values + `}]}]}`
	}
	runQueryCases(t, dtConfig, dtQuery, 1500*time.Millisecond+88*time.Second, checkDTRequest, []queryCase{
		{name: "single value", reply: reply{body: result(`[0.42]`)}, want: 0.42},
		{name: "trailing null skipped", reply: reply{body: result(`[1.5,null]`)}, want: 1.5},
		{name: "no result", reply: reply{body: `{"totalCount":0,"nextPageKey":null,"result":[]}`}, wantIs: ErrNoData},
		{name: "no data", reply: reply{body: `{"totalCount":1,"result":[{"metricId":"m","data":[]}]}`}, wantIs: ErrNoData},
		{name: "only nulls", reply: reply{body: result(`[null]`)}, wantIs: ErrNoData},
		{name: "bad selector", reply: reply{status: http.StatusBadRequest,
			body: `{"error":{"code":400,"message":"Cannot parse metric selector: unexpected token ')' at position 42"}}`},
			wantErr: []string{"HTTP 400 Bad Request: Cannot parse metric selector"}},
		{name: "unauthorized", reply: reply{status: http.StatusUnauthorized,
			body: `{"error":{"code":401,"message":"Token Authentication failed"}}`},
			wantErr: []string{"HTTP 401 Unauthorized: Token Authentication failed"}},
		{name: "token echoed", reply: reply{status: http.StatusForbidden,
			body: `{"error":{"code":403,"message":"Token dt0c01.ABC.secret-9e4d is missing the required scope metrics.read"}}`},
			wantErr: []string{"HTTP 403 Forbidden: Token [redacted] is missing the required scope"}},
		{name: "internal error", reply: reply{status: http.StatusInternalServerError,
			body: `{"error":{"code":500,"message":"Internal server error"}}`},
			wantErr: []string{"HTTP 500 Internal Server Error: Internal server error"}},
		{name: "rate limited", reply: reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "60"},
			body: `{"error":{"code":429,"message":"Too Many Requests"}}`},
			wantErr: []string{"rate limited (HTTP 429; retry after 60s): Too Many Requests"}},
		{name: "malformed body", reply: reply{body: `{"result":[{"data":[{"values":[1`}, wantErr: []string{"decoding response"}},
	})
}

func TestDynatraceTimeout(t *testing.T) {
	t.Parallel() // waits out its timeout: overlap those waits
	testHung(t, dtConfig, dtQuery)
}
