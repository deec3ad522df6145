package providers

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const influxQuery = `from(bucket: "canary")
  |> range(start: -1m)
  |> filter(fn: (r) => r._measurement == "http" and r.app == "podinfo")
  |> mean()` + trickyQuery

func influxConfig(address string) Config {
	return Config{
		Type:    "influxdb",
		Address: address,
		Headers: map[string][]string{extraHeader: {extraHeaderValue}},
		Credentials: map[string][]byte{
			"token": []byte("influx-token-0a7b"),
			"org":   []byte("acme & co"),
		},
	}
}

func checkInfluxRequest(t *testing.T, r *http.Request, body []byte) {
	t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/query" {
		t.Errorf("request = %s %s, want POST /api/v2/query", r.Method, r.URL.Path)
	}
	assertParams(t, r, map[string][]string{"org": {"acme & co"}})
	if string(body) != influxQuery {
		t.Errorf("body = %q, want the Flux query", body)
	}
	assertHeader(t, r, "Authorization", "Token influx-token-0a7b")
	assertHeader(t, r, "Content-Type", "application/vnd.flux")
	assertHeader(t, r, "Accept", "application/csv")
	assertHeader(t, r, extraHeader, extraHeaderValue)
}

// csvLines joins lines as InfluxDB does, with CRLF.
func csvLines(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n"
}

func TestInfluxDBQuery(t *testing.T) {
	const (
		datatype = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,double,string,string"
		group    = "#group,false,false,true,true,false,true,true"
		defaults = "#default,_result,,,,,,"
		header   = ",result,table,_start,_stop,_value,_field,_measurement"
	)
	row := func(table, value string) string {
		return ",," + table + ",2023-11-14T22:12:00Z,2023-11-14T22:13:00Z," + value + ",duration,http"
	}
	runQueryCases(t, influxConfig, influxQuery, time.Minute, checkInfluxRequest, []queryCase{
		{name: "annotated", reply: reply{body: csvLines(datatype, group, defaults, header, row("0", "0.25"))}, want: 0.25},
		{name: "without annotations", reply: reply{body: csvLines(header, row("0", "12"))}, want: 12},
		{name: "first row of first table", reply: reply{body: csvLines(datatype, group, defaults, header, row("0", "1.5"), row("0", "2.5"),
			"", datatype, group, defaults, header, row("1", "3.5"))}, want: 1.5},
		{name: "empty body", reply: reply{body: "\r\n"}, wantIs: ErrNoData},
		{name: "header without rows", reply: reply{body: csvLines(datatype, group, defaults, header)}, wantIs: ErrNoData},
		{name: "null value", reply: reply{body: csvLines(header, row("0", ""))}, wantIs: ErrNoData},
		{name: "NaN value", reply: reply{body: csvLines(header, row("0", "NaN"))}, wantIs: ErrNoData},
		{name: "error table", reply: reply{body: csvLines("#datatype,string,string", "#group,true,true", "#default,,", ",error,reference",
			`,"runtime error @1:1-1:24: from: bucket ""canary"" not found",`)},
			wantErr: []string{`query failed: runtime error @1:1-1:24: from: bucket "canary" not found`}},
		{name: "string value", reply: reply{body: csvLines(",result,table,_value", ",,0,up")}, wantErr: []string{"_value is not a number"}},
		{name: "no _value column", reply: reply{body: csvLines(",result,table,_time", ",,0,2023-11-14T22:12:00Z")},
			wantErr: []string{"no _value column"}},
		{name: "malformed CSV", reply: reply{body: ",result,table,_value\r\n,,0,\"1.5\r\n"}, wantErr: []string{"decoding response"}},
		{name: "compilation failed", reply: reply{status: http.StatusBadRequest,
			body: `{"code":"invalid","message":"compilation failed: error at @2:6-2:11: undefined identifier rang"}`},
			wantErr: []string{"HTTP 400 Bad Request: invalid: compilation failed"}},
		{name: "unauthorized", reply: reply{status: http.StatusUnauthorized, body: `{"code":"unauthorized","message":"unauthorized access"}`},
			wantErr: []string{"HTTP 401 Unauthorized: unauthorized: unauthorized access"}},
		{name: "org echoed", reply: reply{status: http.StatusNotFound, body: `{"code":"not found","message":"organization name \"acme & co\" not found"}`},
			wantErr: []string{`HTTP 404 Not Found: not found: organization name "[redacted]" not found`}},
		{name: "internal error", reply: reply{status: http.StatusInternalServerError, body: `{"code":"internal error","message":"panic: runtime error"}`},
			wantErr: []string{"HTTP 500 Internal Server Error: internal error: panic: runtime error"}},
		{name: "rate limited", reply: reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "5"},
			body: `{"code":"too many requests","message":"query limit reached"}`},
			wantErr: []string{"rate limited (HTTP 429; retry after 5s): too many requests: query limit reached"}},
	})
}

func TestInfluxDBWithoutOrg(t *testing.T) {
	config := func(address string) Config {
		cfg := influxConfig(address)
		delete(cfg.Credentials, "org")
		return cfg
	}
	check := func(t *testing.T, r *http.Request, _ []byte) {
		if r.URL.RawQuery != "" {
			t.Errorf("query string = %q, want none", r.URL.RawQuery)
		}
	}
	runQueryCases(t, config, influxQuery, time.Minute, check, []queryCase{
		{name: "value", reply: reply{body: csvLines(",result,table,_value", ",,0,4")}, want: 4},
	})
}

func TestInfluxDBTimeout(t *testing.T) {
	t.Parallel() // waits out its timeout: overlap those waits
	testHung(t, influxConfig, influxQuery)
}
