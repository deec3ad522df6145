package providers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cwQuery is a MetricDataQuery array as in Flagger's cloudwatch
// MetricTemplates.
const cwQuery = `[
  {"Id": "e1", "Expression": "m1 / m2 * 100", "Label": "ErrorRate"},
  {"Id": "m1", "ReturnData": false, "MetricStat": {"Period": 60, "Stat": "Sum", "Unit": "Count",
    "Metric": {"Namespace": "MyKamon", "MetricName": "http.server.requests.count",
      "Dimensions": [{"Name": "service", "Value": "podinfo"}, {"Name": "http.status_code", "Value": "5xx"}]}}},
  {"Id": "m2", "ReturnData": false, "MetricStat": {"Period": 60, "Stat": "Sum", "Unit": "Count",
    "Metric": {"Namespace": "MyKamon", "MetricName": "http.server.requests.count",
      "Dimensions": [{"Name": "service", "Value": "podinfo"}]}}}
]`

const (
	cwKeyID        = "AKIDTEST4Q7Z"
	cwSecret       = "cw/secret+key-8b1f"
	cwSessionToken = "cw-session-token-2d6a"
)

func cwConfig(address string) Config {
	return Config{
		Type:    "cloudwatch",
		Address: address,
		Region:  "eu-west-1",
		Headers: map[string][]string{extraHeader: {extraHeaderValue}},
		Credentials: map[string][]byte{
			"aws_access_key_id":     []byte(cwKeyID),
			"aws_secret_access_key": []byte(cwSecret),
			"aws_session_token":     []byte(cwSessionToken),
		},
	}
}

func checkCWRequest(t *testing.T, r *http.Request, body []byte) {
	t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		t.Errorf("request = %s %s, want POST /", r.Method, r.URL.Path)
	}
	assertHeader(t, r, "Content-Type", "application/x-amz-json-1.0")
	assertHeader(t, r, "X-Amz-Target", "GraniteServiceVersion20100801.GetMetricData")
	assertHeader(t, r, "X-Amz-Security-Token", cwSessionToken)
	assertHeader(t, r, extraHeader, extraHeaderValue)
	verifySigV4(t, r, body, "eu-west-1")

	var got struct {
		StartTime, EndTime int64
		MetricDataQueries  any
		ScanBy             string
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decoding body %s: %v", body, err)
	}
	if now := time.Now().Unix(); got.EndTime > now || got.EndTime < now-5 || got.EndTime-got.StartTime != 300 {
		t.Errorf("StartTime=%d EndTime=%d, want the 300s up to now (%d)", got.StartTime, got.EndTime, now)
	}
	var want any
	if err := json.Unmarshal([]byte(cwQuery), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.MetricDataQueries, want) {
		t.Errorf("MetricDataQueries = %v, want the query", got.MetricDataQueries)
	}
	if got.ScanBy != "TimestampDescending" {
		t.Errorf("ScanBy = %q, want TimestampDescending", got.ScanBy)
	}
}

// verifySigV4 recomputes, independently of signV4, the signature of a
// received request from the headers its Authorization header lists.
func verifySigV4(t *testing.T, r *http.Request, body []byte, region string) {
	t.Helper()
	auth := regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/monitoring/aws4_request, ` +
		`SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`).FindStringSubmatch(r.Header.Get("Authorization"))
	if auth == nil {
		t.Errorf("Authorization %q is not a SigV4 header for monitoring", r.Header.Get("Authorization"))
		return
	}
	keyID, day, gotRegion, signed, signature := auth[1], auth[2], auth[3], strings.Split(auth[4], ";"), auth[5]
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || time.Since(at) > time.Minute || day != amzDate[:8] {
		t.Errorf("X-Amz-Date %q does not match now and the credential day %s", amzDate, day)
	}
	if keyID != cwKeyID || gotRegion != region {
		t.Errorf("credential scope %s/%s, want %s/%s", keyID, gotRegion, cwKeyID, region)
	}
	for _, h := range []string{"content-type", "host", "x-amz-date", "x-amz-security-token", "x-amz-target", strings.ToLower(extraHeader)} {
		if !slices.Contains(signed, h) {
			t.Errorf("SignedHeaders %v lack %s", signed, h)
		}
	}

	var canonical strings.Builder
	canonical.WriteString(r.Method + "\n/\n\n")
	for _, h := range signed {
		value := r.Host
		if h != "host" {
			value = strings.Join(r.Header.Values(h), ",")
		}
		canonical.WriteString(h + ":" + strings.TrimSpace(value) + "\n")
	}
	bodyHash := sha256.Sum256(body)
	canonical.WriteString("\n" + strings.Join(signed, ";") + "\n" + hex.EncodeToString(bodyHash[:]))
	requestHash := sha256.Sum256([]byte(canonical.String()))
	scope := day + "/" + region + "/monitoring/aws4_request"
	stringToSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(requestHash[:])

	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	key := mac(mac(mac(mac([]byte("AWS4"+cwSecret), day), region), "monitoring"), "aws4_request")
	if want := hex.EncodeToString(mac(key, stringToSign)); signature != want {
		t.Errorf("Signature = %s, want %s", signature, want)
	}
}

func TestCloudWatchQuery(t *testing.T) {
	results := func(r string) string { return `{"MetricDataResults":[` + r + `],"Messages":[]}` }
	runQueryCases(t, cwConfig, cwQuery, 5*time.Minute, checkCWRequest, []queryCase{
		{name: "newest value", reply: reply{body: results(`{"Id":"e1","Label":"ErrorRate","StatusCode":"Complete",` +
			`"Timestamps":[1700000060,1700000000],"Values":[0.12,0.1]}`)}, want: 0.12},
		{name: "first result only", reply: reply{body: results(`{"Id":"e1","StatusCode":"Complete","Values":[3]},` +
			`{"Id":"e2","StatusCode":"Complete","Values":[4]}`)}, want: 3},
		{name: "no results", reply: reply{body: results("")}, wantIs: ErrNoData},
		{name: "no values", reply: reply{body: results(`{"Id":"e1","StatusCode":"Complete","Timestamps":[],"Values":[]}`)}, wantIs: ErrNoData},
		{name: "forbidden result", reply: reply{body: results(`{"Id":"e1","StatusCode":"Forbidden","Values":[]}`)},
			wantErr: []string{`metric data query "e1": Forbidden`}},
		{name: "query not an array", query: `{"Id":"e1"}`, wantErr: []string{"query must be a non-empty JSON array of MetricDataQuery"}},
		{name: "empty query", query: `[]`, wantErr: []string{"query must be a non-empty JSON array of MetricDataQuery"}},
		{name: "validation error", reply: reply{status: http.StatusBadRequest, body: `{"__type":"com.amazon.coral.validate#ValidationException",` +
			`"message":"The value e1 for parameter MetricDataQueries.member.1.Expression is invalid."}`},
			wantErr: []string{"HTTP 400 Bad Request: ValidationException: The value e1 for parameter"}},
		{name: "bad signature", reply: reply{status: http.StatusForbidden, body: `{"__type":"com.amazon.coral.service#InvalidSignatureException",` +
			`"Message":"The request signature we calculated does not match the signature you provided."}`},
			wantErr: []string{"HTTP 403 Forbidden: InvalidSignatureException: The request signature we calculated"}},
		{name: "credentials echoed", reply: reply{status: http.StatusUnauthorized, body: `{"__type":"com.amazon.coral.service#UnrecognizedClientException",` +
			`"message":"key AKIDTEST4Q7Z, secret cw/secret+key-8b1f, token cw-session-token-2d6a"}`},
			wantErr: []string{"HTTP 401", "key [redacted], secret [redacted], token [redacted]"}},
		{name: "internal failure", reply: reply{status: http.StatusInternalServerError, body: `{"__type":"InternalFailure"}`},
			wantErr: []string{"HTTP 500 Internal Server Error: InternalFailure"}},
		{name: "rate limited", reply: reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "2"},
			body: `{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}`},
			wantErr: []string{"rate limited (HTTP 429; retry after 2s): ThrottlingException: Rate exceeded"}},
		{name: "malformed body", reply: reply{body: `{"MetricDataResults":[{"Values":[1`}, wantErr: []string{"decoding response"}},
	})
}

func TestCloudWatchDefaultEndpoint(t *testing.T) {
	p, err := New(cwConfig(""))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := p.(*bounded).p.(*cloudWatch).endpoint; got != "https://monitoring.eu-west-1.amazonaws.com/" {
		t.Errorf("endpoint = %q, want the regional endpoint", got)
	}
}

func TestCloudWatchTimeout(t *testing.T) {
	t.Parallel() // waits out its timeout: overlap those waits
	testHung(t, cwConfig, cwQuery)
}

// TestSignV4Vectors checks signV4 against AWS's Signature Version 4 test
// suite (credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1,
// service "service").
func TestSignV4Vectors(t *testing.T) {
	keys := awsKeys{id: "AKIDEXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	const stsToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
	tests := []struct {
		name, method, url string
		header            map[string]string
		body, token       string
		wantSigned        string
		wantSignature     string
	}{
		{name: "get-vanilla", method: "GET", url: "https://example.amazonaws.com/",
			wantSigned: "host;x-amz-date", wantSignature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{name: "get-vanilla-query-order-key-case", method: "GET", url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
			wantSigned: "host;x-amz-date", wantSignature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{name: "post-vanilla", method: "POST", url: "https://example.amazonaws.com/",
			wantSigned: "host;x-amz-date", wantSignature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{name: "post-header-key-sort", method: "POST", url: "https://example.amazonaws.com/", header: map[string]string{"My-Header1": "  value1  "},
			wantSigned: "host;my-header1;x-amz-date", wantSignature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
		{name: "post-x-www-form-urlencoded", method: "POST", url: "https://example.amazonaws.com/",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: "Param1=value1",
			wantSigned: "content-type;host;x-amz-date", wantSignature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
		{name: "post-sts-header-before", method: "POST", url: "https://example.amazonaws.com/", token: stsToken,
			wantSigned: "host;x-amz-date;x-amz-security-token", wantSignature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			k := keys
			k.sessionToken = tc.token
			signV4(req, []byte(tc.body), k, "us-east-1", "service", time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC))
			want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=" +
				tc.wantSigned + ", Signature=" + tc.wantSignature
			if got := req.Header.Get("Authorization"); got != want {
				t.Errorf("Authorization =\n%s\nwant\n%s", got, want)
			}
			if got := req.Header.Get("X-Amz-Date"); got != "20150830T123600Z" {
				t.Errorf("X-Amz-Date = %q", got)
			}
			if got := req.Header.Get("X-Amz-Security-Token"); got != tc.token {
				t.Errorf("X-Amz-Security-Token = %q, want %q", got, tc.token)
			}
		})
	}
}

// TestCloudWatchDefaultCredentials: a template without keys queries with
// the controller's own identity, here from EKS Pod Identity's container
// credentials endpoint through the AWS SDK's default chain: the request is
// signed with the keys that endpoint handed out, and the endpoint was asked
// with the pod's token.
func TestCloudWatchDefaultCredentials(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "eks-pod-identity-token")
	if err := os.WriteFile(tokenFile, []byte("pod-identity-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	identity := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "pod-identity-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		asked.Add(1)
		fmt.Fprintf(w, `{"AccessKeyId":%q,"SecretAccessKey":%q,"Token":%q,"Expiration":%q}`,
			cwKeyID, cwSecret, cwSessionToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(identity.Close)
	for k, v := range map[string]string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     identity.URL + "/v1/credentials",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
		"AWS_ACCESS_KEY_ID":                      "",
		"AWS_SECRET_ACCESS_KEY":                  "",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_PROFILE":                            "",
		"AWS_CONFIG_FILE":                        filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE":            filepath.Join(dir, "none"),
		"AWS_EC2_METADATA_DISABLED":              "true",
	} {
		t.Setenv(k, v)
	}
	creds, err := DefaultAWSCredentials(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	cloudwatch := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		checkCWRequest(t, r, body)
		fmt.Fprint(w, `{"MetricDataResults":[{"Id":"e1","StatusCode":"Complete","Values":[0.5]}]}`)
	}))
	t.Cleanup(cloudwatch.Close)
	cfg := cwConfig(cloudwatch.URL)
	cfg.Credentials, cfg.AWS = nil, creds
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		v, err := p.Query(t.Context(), cwQuery, 5*time.Minute)
		if err != nil || v != 0.5 {
			t.Fatalf("Query = %v, %v; want 0.5", v, err)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the credentials endpoint was asked %d times, want once: the SDK caches", n)
	}
}
