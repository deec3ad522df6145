package providers

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/serin-dev/serin/pkg/internal/httpx"
)

// cloudWatch calls CloudWatch's GetMetricData over the AWS JSON 1.0
// protocol, signed with Signature Version 4 by hand rather than through
// the AWS SDK, which would be a large dependency for one call:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
type cloudWatch struct {
	endpoint string
	region   string
	keys     awsKeys
	// ambient, when set, replaces keys: the controller's own identity.
	ambient aws.CredentialsProvider
	header  http.Header // the extra headers, signed with the request
	client  *client
}

// DefaultAWSCredentials is the controller's own AWS identity, found as the
// AWS SDK finds it: the environment, a web identity token (IRSA), EKS Pod
// Identity's container credentials endpoint, then the instance role.
// Nothing is fetched until the first query; the SDK caches what it gets
// and renews it before it expires.
func DefaultAWSCredentials(ctx context.Context) (aws.CredentialsProvider, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return cfg.Credentials, nil
}

// awsKeys are the credentials a request is signed with.
type awsKeys struct {
	id, secret, sessionToken string
}

// newCloudWatch needs a region and the aws_access_key_id and
// aws_secret_access_key credentials (aws_session_token is optional), or,
// without them, cfg.AWS. The address, when set, replaces the regional
// endpoint (e.g. a VPC endpoint).
func newCloudWatch(cfg Config) (Provider, error) {
	if cfg.Region == "" {
		return nil, errors.New("region is required")
	}
	base, err := baseURL(cfg.Address, "https://monitoring."+cfg.Region+".amazonaws.com")
	if err != nil {
		return nil, err
	}
	if len(cfg.Credentials["aws_access_key_id"]) == 0 && cfg.AWS != nil {
		return &cloudWatch{
			endpoint: base + "/",
			region:   cfg.Region,
			ambient:  cfg.AWS,
			header:   headerWith(cfg),
			client:   newClient(cfg, nil),
		}, nil
	}
	id, err := credential(cfg, "aws_access_key_id")
	if err != nil {
		return nil, err
	}
	secret, err := credential(cfg, "aws_secret_access_key")
	if err != nil {
		return nil, err
	}
	return &cloudWatch{
		endpoint: base + "/",
		region:   cfg.Region,
		keys:     awsKeys{id: id, secret: secret, sessionToken: string(cfg.Credentials["aws_session_token"])},
		header:   headerWith(cfg),
		client:   newClient(cfg, nil), // headers are set before signing, not by the transport
	}, nil
}

// Query takes a JSON array of MetricDataQuery, as Flagger's cloudwatch
// MetricTemplates do, and returns the newest value of the first result.
func (c *cloudWatch) Query(ctx context.Context, query string, window time.Duration) (float64, error) {
	seconds, err := windowSeconds(window)
	if err != nil {
		return 0, err
	}
	var queries []json.RawMessage
	if err := json.Unmarshal([]byte(query), &queries); err != nil || len(queries) == 0 {
		return 0, errors.New("query must be a non-empty JSON array of MetricDataQuery")
	}
	end := time.Now()
	body, err := json.Marshal(map[string]any{
		"StartTime":         end.Unix() - seconds,
		"EndTime":           end.Unix(),
		"MetricDataQueries": queries,
		"ScanBy":            "TimestampDescending", // the default, relied upon below
	})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801.GetMetricData")
	httpx.AddAbsent(req.Header, c.header)
	keys := c.keys
	if c.ambient != nil {
		// The SDK caches the credentials and renews them before they
		// expire (web identity, pod identity and instance role ones do).
		creds, err := c.ambient.Retrieve(ctx)
		if err != nil {
			return 0, fmt.Errorf("the controller's AWS credentials: %w", err)
		}
		keys = awsKeys{id: creds.AccessKeyID, secret: creds.SecretAccessKey, sessionToken: creds.SessionToken}
	}
	signV4(req, body, keys, c.region, "monitoring", end)

	resp, err := c.client.do(req, awsMessage)
	if err != nil {
		return 0, err
	}
	var res struct {
		MetricDataResults []struct {
			ID         string    `json:"Id"`
			StatusCode string    `json:"StatusCode"`
			Values     []float64 `json:"Values"`
		} `json:"MetricDataResults"`
	}
	if err := json.Unmarshal(resp, &res); err != nil {
		return 0, fmt.Errorf("decoding response: %w", err)
	}
	if len(res.MetricDataResults) == 0 {
		return 0, ErrNoData
	}
	first := res.MetricDataResults[0]
	if len(first.Values) == 0 {
		if first.StatusCode == "Forbidden" || first.StatusCode == "InternalError" {
			return 0, fmt.Errorf("metric data query %q: %s", first.ID, first.StatusCode)
		}
		return 0, ErrNoData
	}
	return first.Values[0], nil
}

// awsMessage reads the AWS JSON protocol's error: {"__type":
// "com.amazonaws...#ValidationError", "message": "..."}; some services
// spell it "Message", which decoding matches too.
func awsMessage(body []byte) string {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Type == "" {
		return ""
	}
	name := e.Type[strings.LastIndex(e.Type, "#")+1:]
	if e.Message == "" {
		return name
	}
	return name + ": " + e.Message
}

// signV4 signs req with AWS Signature Version 4, covering the host and
// every header req carries at this point:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
func signV4(req *http.Request, body []byte, keys awsKeys, region, service string, now time.Time) {
	amzDate := now.UTC().Format("20060102T150405Z")
	req.Header.Set("X-Amz-Date", amzDate)
	if keys.sessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", keys.sessionToken)
	}

	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	values := map[string]string{"host": host}
	for name, vs := range req.Header {
		trimmed := make([]string, len(vs))
		for i, v := range vs {
			trimmed[i] = strings.Join(strings.Fields(v), " ")
		}
		values[strings.ToLower(name)] = strings.Join(trimmed, ",")
	}
	names := slices.Sorted(maps.Keys(values))
	var headers strings.Builder
	for _, name := range names {
		headers.WriteString(name + ":" + values[name] + "\n")
	}
	signedHeaders := strings.Join(names, ";")

	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canonical := strings.Join([]string{
		req.Method,
		awsEscape(path, "/"), // escaped twice, as services other than S3 expect
		canonicalQuery(req.URL.Query()),
		headers.String(),
		signedHeaders,
		hexSHA256(body),
	}, "\n")

	day := amzDate[:8]
	scope := day + "/" + region + "/" + service + "/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hexSHA256([]byte(canonical))
	key := []byte("AWS4" + keys.secret)
	for _, part := range []string{day, region, service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+keys.id+"/"+scope+
		", SignedHeaders="+signedHeaders+", Signature="+hex.EncodeToString(hmacSHA256(key, toSign)))
}

// canonicalQuery sorts and encodes query parameters as SigV4 requires.
func canonicalQuery(q url.Values) string {
	var pairs [][2]string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, [2]string{awsEscape(k, ""), awsEscape(v, "")})
		}
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	encoded := make([]string, len(pairs))
	for i, p := range pairs {
		encoded[i] = p[0] + "=" + p[1]
	}
	return strings.Join(encoded, "&")
}

// awsEscape percent-encodes every byte of s except unreserved characters
// and those in keep (RFC 3986, as SigV4 specifies).
func awsEscape(s, keep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-_.~"+keep, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
