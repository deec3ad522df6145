// Package providers queries the metrics backends a MetricTemplate can name
// and reduces each answer to the one number an analysis check compares with
// its thresholds. Every backend sits behind the same small Provider
// interface, so a check does not care where its metric comes from.
package providers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/serin-dev/serin/pkg/httpreply"
)

// ErrNoData: the backend answered but without a usable value (empty result,
// NaN, ±Inf, all nulls). Callers count it apart from failures, since a
// canary that receives no traffic yet is not a canary that misbehaves.
var ErrNoData = errors.New("no data")

// DefaultTimeout bounds a query whose Config sets no timeout.
const DefaultTimeout = 5 * time.Second

// Config says how to reach a backend (built by the caller from a
// MetricTemplate's spec.provider and its Secret).
type Config struct {
	Type               string              // prometheus, datadog, cloudwatch, newrelic, graphite, influxdb, dynatrace
	Address            string              // base URL; each provider documents its default when empty (prometheus: required)
	Headers            map[string][]string // added to every request
	InsecureSkipVerify bool
	Timeout            time.Duration     // per query; DefaultTimeout when zero
	Region             string            // cloudwatch
	Credentials        map[string][]byte // the Secret's data; keys per provider
	// AWS, for cloudwatch without keys in Credentials, is the
	// controller's own AWS identity (the SDK's default credential chain).
	AWS aws.CredentialsProvider
}

// Provider queries one backend. It is safe for concurrent use.
type Provider interface {
	// Query runs query over the window ending now and returns one value.
	Query(ctx context.Context, query string, window time.Duration) (float64, error)
}

// constructors maps Config.Type to the provider it builds. Each one checks
// its own address and credentials, so a misconfiguration fails here rather
// than at every analysis.
var constructors = map[string]func(Config) (Provider, error){
	"prometheus": newPrometheus,
	"datadog":    newDatadog,
	"cloudwatch": newCloudWatch,
	"newrelic":   newNewRelic,
	"graphite":   newGraphite,
	"influxdb":   newInfluxDB,
	"dynatrace":  newDynatrace,
}

// New returns the Provider for cfg.Type. An unknown type, a missing address
// or a missing credential is an error naming what is missing, never a value.
func New(cfg Config) (Provider, error) {
	build, ok := constructors[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("unknown metrics provider type %q (want one of %s)",
			cfg.Type, strings.Join(slices.Sorted(maps.Keys(constructors)), ", "))
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%s: timeout must not be negative", cfg.Type)
	}
	p, err := build(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Type, err)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &bounded{name: cfg.Type, timeout: timeout, redactor: httpreply.NewRedactor(secrets(cfg)...), p: p}, nil
}

// bounded does for every provider what none should forget: bound the query
// in time, reduce non-finite values to ErrNoData, name the provider in
// errors and keep secrets out of them.
type bounded struct {
	name     string
	timeout  time.Duration
	redactor *httpreply.Redactor
	p        Provider
}

func (b *bounded) Query(ctx context.Context, query string, window time.Duration) (float64, error) {
	qctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	v, err := b.p.Query(qctx, query, window)
	if err == nil && !isFinite(v) {
		err = fmt.Errorf("value %v: %w", v, ErrNoData)
	}
	if err == nil {
		return v, nil
	}
	if qctx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("timed out after %s: %w", b.timeout, err)
	}
	// errors.Is(err, ErrNoData) and context errors still hold.
	return 0, b.redactor.Error(b.name+": "+err.Error(), err)
}

func isFinite(v float64) bool { return v-v == 0 } // false for NaN and ±Inf

// secrets lists the values no error may quote: the Secret's data and the
// extra headers, which often carry tokens too.
func secrets(cfg Config) []string {
	var s []string
	for _, v := range cfg.Credentials {
		s = append(s, string(v))
	}
	for _, vs := range cfg.Headers {
		s = append(s, vs...)
	}
	return s
}

// credential returns the Secret's value for key, which must be set.
func credential(cfg Config, key string) (string, error) {
	v := cfg.Credentials[key]
	if len(v) == 0 {
		return "", fmt.Errorf("missing credential %q", key)
	}
	return string(v), nil
}

// basicAuth returns the Authorization value for the optional username and
// password credentials: none when neither is set, an error when only one is.
func basicAuth(cfg Config) (string, error) {
	user, pass := cfg.Credentials["username"], cfg.Credentials["password"]
	if len(user) == 0 && len(pass) == 0 {
		return "", nil
	}
	if _, err := credential(cfg, "username"); err != nil {
		return "", err
	}
	if _, err := credential(cfg, "password"); err != nil {
		return "", err
	}
	r := http.Request{Header: http.Header{}}
	r.SetBasicAuth(string(user), string(pass))
	return r.Header.Get("Authorization"), nil
}

// baseURL checks address, or fallback when address is empty, and returns it
// without a trailing slash so that API paths can be appended.
func baseURL(address, fallback string) (string, error) {
	if address == "" {
		address = fallback
	}
	if address == "" {
		return "", errors.New("address is required")
	}
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The address may embed a password: do not quote it.
		return "", errors.New("address is not an absolute http or https URL")
	}
	return strings.TrimRight(address, "/"), nil
}

// windowSeconds turns a query window into whole seconds, rounded up so that
// a sub-second remainder still widens the window rather than dropping data.
func windowSeconds(window time.Duration) (int64, error) {
	if window < time.Second {
		return 0, fmt.Errorf("window %s is shorter than 1s", window)
	}
	return int64((window + time.Second - 1) / time.Second), nil
}

// lastValue is the newest non-null value of a series ordered oldest first:
// backends pad the end of a window with nulls for buckets not yet filled.
func lastValue[T any](points []T, value func(T) *float64) (float64, error) {
	for i := len(points) - 1; i >= 0; i-- {
		if v := value(points[i]); v != nil {
			return *v, nil
		}
	}
	return 0, ErrNoData
}
